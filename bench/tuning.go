package main

import (
	"fmt"
	"path/filepath"

	"github.com/govirtd/govirtd/test/flowlimit"
)

// The tuning phase: a guest that pre-copy cannot get across (192 MiB,
// 64 MiB rewritten at 32 MiB/s, in 40 ms ticks as the auto-converge test's
// guest: see throttleable in test/compat) moved with the options that
// rescue it, on both daemons: time to complete, the guest-visible pause,
// and what the daemon adds (wall − the job's own elapsed time). Post-copy
// and auto-converge run at --bandwidth 8; parallel migration, which adds
// connections and not convergence, runs through a link that gives each
// connection 8 MiB/s (flowlimit), where one connection does not converge
// either and eight do.
var tuningModes = []struct {
	name string
	args []string
	// flowLimited: no --bandwidth, the stream goes through a per-flow
	// limited proxy (--migrateuri).
	flowLimited bool
}{
	{"post-copy (--postcopy-after-precopy)", []string{"--postcopy", "--postcopy-after-precopy"}, false},
	{"auto-converge (initial 90 %, +5 %)", []string{"--auto-converge", "--auto-converge-initial", "90", "--auto-converge-increment", "5"}, false},
	{"parallel (8 connections, 8 MiB/s each)", []string{"--parallel", "--parallel-connections", "8"}, true},
}

// flowLinkAddr is where the benchmark's per-flow limited link listens.
const flowLinkAddr = "127.0.77.250"

func (b *bench) tuningPhase() error {
	pairs := []*pair{b.gv}
	if b.lv != nil {
		pairs = []*pair{b.lv, b.gv}
	}
	for _, p := range pairs {
		serial := filepath.Join(b.root, p.kind+"-serial-nonconverging.log")
		p.guest, p.cur = "bench-guest-nonconverging", 0
		xml := guestXMLWith(p.guest, "b7c1a9e0-5d2f-4e7a-9c3b-000000000003", b.kernel, b.initrd, serial, 192, " tick_ms=40 dirty_mb=64 dirty_rate_mb=32")
		if err := p.defineOnBoth(xml); err != nil {
			return err
		}
		logf("booting the non-converging guest on %s", p.hosts[0].name)
		if err := p.startGuest(serial); err != nil {
			return err
		}
	}
	// Each mode -reps times per daemon, the daemons taking turns to go
	// first: a move takes from 15 s to over a minute, and one run of QEMU's
	// own job varies by many seconds under TCG.
	const sec = "Migration, non-converging guest (192 MiB, 64 MiB rewritten at 32 MiB/s in 40 ms ticks, --bandwidth 8 or 8 MiB/s per connection, TCG)"
	for rep := 0; rep < *flagReps; rep++ {
		for i, m := range tuningModes {
			order := pairs
			if (i+rep)%2 == 1 && len(pairs) == 2 {
				order = []*pair{pairs[1], pairs[0]}
			}
			for _, p := range order {
				var r migResult
				err := alone(p, pairs, func() (err error) {
					if !m.flowLimited {
						r, err = p.virshMigrate(false, 8, m.args...)
						return err
					}
					link, err := flowlimit.Listen(flowLinkAddr+":0", p.dst().addr, 8<<20)
					if err != nil {
						return err
					}
					defer link.Close()
					r, err = p.virshMigrate(false, 0, append([]string{"--migrateuri", link.URI()}, m.args...)...)
					return err
				})
				if err != nil {
					return fmt.Errorf("%s: %w", m.name, err)
				}
				logf("non-converging guest, %s, on %s: wall %.0f ms, elapsed %.0f ms, downtime %.0f ms", m.name, p.kind, ms(r.wall), ms(r.elapsed), ms(r.downtime))
				b.row("nc-"+m.name+"-wall", row{section: sec, figure: m.name + ": time to complete (wall)", unit: "ms", svg: true, tkind: "ratio<=", tval: 1}).add(p.kind, ms(r.wall))
				b.row("nc-"+m.name+"-downtime", row{section: sec, figure: m.name + ": guest-visible pause (downtime)", unit: "ms"}).add(p.kind, ms(r.downtime))
				b.row("nc-"+m.name+"-overhead", row{section: sec, figure: m.name + ": orchestration overhead (wall − elapsed)", unit: "ms", tkind: "abs<=", tval: 100}).add(p.kind, ms(r.wall-r.elapsed))
			}
		}
	}
	for _, p := range pairs {
		p.removeGuest()
	}
	return nil
}
