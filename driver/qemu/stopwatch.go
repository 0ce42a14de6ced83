package qemu

import (
	"log/slog"
	"time"
)

// stopwatch records where one operation's time goes, for the debug log
// (log_level = 1): migration steps are judged by their milliseconds, and
// this is how an operator sees which part took them.
type stopwatch struct {
	log   *slog.Logger
	op    string
	dom   string
	start time.Time
	last  time.Time
	laps  []any
}

func (d *Driver) stopwatch(op, dom string) *stopwatch {
	if !d.log.Enabled(d.ctx, slog.LevelDebug) {
		return nil
	}
	now := time.Now()
	return &stopwatch{log: d.log, op: op, dom: dom, start: now, last: now}
}

// forDomain names the domain once it is known (Prepare learns it from the
// XML it parses).
func (s *stopwatch) forDomain(name string) {
	if s != nil {
		s.dom = name
	}
}

// lap notes the time since the previous lap under name.
func (s *stopwatch) lap(name string) {
	if s == nil {
		return
	}
	now := time.Now()
	s.laps = append(s.laps, name, now.Sub(s.last).Round(10*time.Microsecond))
	s.last = now
}

// done logs the laps and the total.
func (s *stopwatch) done() {
	if s == nil {
		return
	}
	args := append([]any{"domain", s.dom, "total", time.Since(s.start).Round(10 * time.Microsecond)}, s.laps...)
	s.log.Debug(s.op+" timing", args...)
}
