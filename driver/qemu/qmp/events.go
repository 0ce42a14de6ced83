package qmp

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Event names the driver cares about (QEMU 7.2).
const (
	EventShutdown      = "SHUTDOWN"  // data: guest bool, reason string
	EventPowerdown     = "POWERDOWN" // guest was asked to power down (ACPI)
	EventReset         = "RESET"     // data: guest bool, reason string
	EventStop          = "STOP"
	EventResume        = "RESUME"
	EventSuspend       = "SUSPEND"
	EventWakeup        = "WAKEUP"
	EventGuestPanicked = "GUEST_PANICKED"
	EventMigration     = "MIGRATION"      // data: status string
	EventMigrationPass = "MIGRATION_PASS" // data: pass int
	EventBalloonChange = "BALLOON_CHANGE" // data: actual int (bytes)
	// EventBlockIOError: a disk request failed; data: device, node-name,
	// operation, action ("stop", "report", "ignore"), nospace, reason.
	EventBlockIOError = "BLOCK_IO_ERROR"
)

// Event is an asynchronous QMP event.
type Event struct {
	Name string
	// Data is the event's "data" member as decoded by encoding/json
	// (numbers are float64), nil when the event has none. Every subscriber
	// gets the same map: treat it as read-only.
	Data map[string]any
	// Time is QEMU's timestamp of the event (host clock, microseconds).
	Time time.Time
}

// DataString returns Data[key] if it is a string, else "".
func (e Event) DataString(key string) string {
	s, _ := e.Data[key].(string)
	return s
}

// DataBool returns Data[key] if it is a bool, else false.
func (e Event) DataBool(key string) bool {
	b, _ := e.Data[key].(bool)
	return b
}

// DataInt returns Data[key] if it is a number, truncated to int64, else 0.
func (e Event) DataInt(key string) int64 {
	f, _ := e.Data[key].(float64)
	return int64(f)
}

const (
	// subscriberBuffer is the channel buffer in front of each subscriber's
	// queue; it only saves goroutine hand-offs, the queue behind it is
	// unbounded.
	subscriberBuffer = 64
	// unclaimedBacklog caps what the lifetime subscription keeps before
	// anyone has called Events, so that a user who only ever uses
	// Subscribe does not accumulate every event of the VM's life.
	unclaimedBacklog = 4096
)

// Events returns the monitor's lifetime event channel: every event received
// since Dial, in order, closed after the last event once the monitor has
// disconnected. It is the same channel on every call, so have one consumer.
//
// Nothing is dropped and the socket reader never waits for the consumer:
// events queue up in memory for as long as the consumer lags, so the
// consumer must keep reading until the channel is closed (the goroutine
// feeding it stays blocked otherwise). Not calling Events at all is fine:
// until the first call only the latest 4096 events are retained, and an
// Events channel nobody asked for is discarded at disconnect.
func (m *Monitor) Events() <-chan Event {
	m.lifetime.claim()
	return m.lifetime.out
}

// Subscribe returns a new channel that receives a copy of every event
// received after Subscribe returns, in order, with the same queueing as
// Events. The channel is closed when ctx ends (soon after, possibly with
// some queued events still delivered; the remaining ones are discarded) or,
// after all queued events, when the monitor disconnects. With a context
// that never ends the subscription lasts for the monitor's lifetime.
//
// To wait for the outcome of a command, subscribe before sending it: any
// event QEMU emits in response is then guaranteed to be on the channel.
func (m *Monitor) Subscribe(ctx context.Context) <-chan Event {
	s := newSubscriber(ctx.Done(), 0)
	m.mu.Lock()
	if m.gone {
		m.mu.Unlock()
		close(s.out)
		return s.out
	}
	m.subs[s] = struct{}{}
	m.mu.Unlock()
	go s.run(m)
	return s.out
}

// WaitEvent reads events from a channel obtained from Subscribe or Events
// until one satisfies match (nil matches anything) and returns it. It fails
// with ctx.Err() when ctx ends and ErrDisconnected when the channel is
// closed without a match.
func WaitEvent(ctx context.Context, events <-chan Event, match func(Event) bool) (Event, error) {
	for {
		select {
		case e, ok := <-events:
			if !ok {
				// A subscription bound to this ctx closes when ctx ends;
				// report that, not a disconnect.
				if err := ctx.Err(); err != nil {
					return Event{}, fmt.Errorf("qmp wait event: %w", err)
				}
				return Event{}, fmt.Errorf("qmp wait event: %w", ErrDisconnected)
			}
			if match == nil || match(e) {
				return e, nil
			}
		case <-ctx.Done():
			return Event{}, fmt.Errorf("qmp wait event: %w", ctx.Err())
		}
	}
}

// EventIs matches events with any of the given names.
func EventIs(names ...string) func(Event) bool {
	return func(e Event) bool {
		for _, n := range names {
			if e.Name == n {
				return true
			}
		}
		return false
	}
}

// MigrationStatusIs matches MIGRATION events whose status is one of the
// given ones (MigrationStatus* constants), e.g. the terminal states.
func MigrationStatusIs(statuses ...string) func(Event) bool {
	return func(e Event) bool {
		if e.Name != EventMigration {
			return false
		}
		st := e.DataString("status")
		for _, s := range statuses {
			if st == s {
				return true
			}
		}
		return false
	}
}

// publish queues an event to every subscriber. It never blocks.
func (m *Monitor) publish(msg message) {
	ev := Event{
		Name: msg.Event,
		Data: msg.Data,
		Time: time.Unix(msg.Timestamp.Seconds, msg.Timestamp.Microseconds*int64(time.Microsecond)),
	}
	m.mu.Lock()
	for s := range m.subs {
		s.push(ev)
	}
	m.mu.Unlock()
}

func (m *Monitor) unsubscribe(s *subscriber) {
	m.mu.Lock()
	delete(m.subs, s)
	m.mu.Unlock()
}

// subscriber is one event consumer: an unbounded queue drained into out by
// its own goroutine, so that pushing never blocks.
type subscriber struct {
	out    chan Event
	cancel <-chan struct{} // nil: never cancelled
	wake   chan struct{}   // capacity 1: "queue changed"

	mu       sync.Mutex
	queue    []Event
	limit    int // >0: keep only the newest limit events (unclaimed lifetime subscription)
	claimed  bool
	finished bool
}

func newSubscriber(cancel <-chan struct{}, limit int) *subscriber {
	return &subscriber{
		out:    make(chan Event, subscriberBuffer),
		cancel: cancel,
		wake:   make(chan struct{}, 1),
		limit:  limit,
	}
}

func (s *subscriber) push(e Event) {
	s.mu.Lock()
	s.queue = append(s.queue, e)
	if s.limit > 0 && len(s.queue) > s.limit {
		s.queue[0] = Event{}
		s.queue = s.queue[1:]
	}
	s.mu.Unlock()
	s.signal()
}

// claim lifts the backlog limit: from now on someone is reading.
func (s *subscriber) claim() {
	s.mu.Lock()
	s.limit = 0
	s.claimed = true
	s.mu.Unlock()
}

// abandonIfUnclaimed reports whether nobody has claimed the subscription,
// in which case it never will be (claiming after this point just gets a
// channel that is closed soon).
func (s *subscriber) abandonIfUnclaimed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.claimed
}

// finish marks the end of the stream: out is closed once the queue is
// drained.
func (s *subscriber) finish() {
	s.mu.Lock()
	s.finished = true
	s.mu.Unlock()
	s.signal()
}

func (s *subscriber) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *subscriber) run(m *Monitor) {
	defer close(s.out)
	for {
		s.mu.Lock()
		if len(s.queue) == 0 {
			finished := s.finished
			s.queue = nil // let a burst's backing array go
			s.mu.Unlock()
			if finished {
				return
			}
			select {
			case <-s.wake:
				continue
			case <-s.cancel:
				m.unsubscribe(s)
				return
			}
		}
		e := s.queue[0]
		s.queue[0] = Event{}
		s.queue = s.queue[1:]
		s.mu.Unlock()

		select {
		case s.out <- e:
		case <-s.cancel:
			m.unsubscribe(s)
			return
		}
	}
}
