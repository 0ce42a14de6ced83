// Command bench measures govirtd against a real libvirtd side by side: RPC
// throughput and latency, `virsh list`, live migration and memory. Both
// daemons are driven by the same client (go-libvirt, or Debian's virsh),
// runs alternate between them, and the result is one table (markdown) and
// one picture (SVG). See bench/README.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/govirtd/govirtd/test/deps"
)

var (
	flagGovirtd  = flag.String("govirtd", "bench/out/govirtd", "govirtd binary")
	flagLvScript = flag.String("libvirtd-host", "test/libvirtd/host.sh", "script that runs a namespaced libvirtd")
	flagGuest    = flag.String("guest-build", "test/guest/build.sh", "script that builds the test guest")
	flagOut      = flag.String("out", "bench/out", "output directory")
	flagReps     = flag.Int("reps", 3, "repetitions of every figure")
	flagDur      = flag.Duration("dur", 2*time.Second, "duration of one RPC run")
	flagNoLv     = flag.Bool("no-libvirtd", false, "measure govirtd only")
	flagPhases   = flag.String("phases", "rpc,list,migrate,tuning", "phases to run")
)

var t0 = time.Now()

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(t0).Seconds(), fmt.Sprintf(format, a...))
}

// bench holds the daemons and the table being filled.
type bench struct {
	root   string
	gv, lv *pair // the RPC and memory figures use hosts[0] of each
	rows   []row
	index  map[string]int
	notes  []string
	tls    []timeline
	kernel string
	initrd string
}

func (b *bench) row(key string, r row) *row {
	if i, ok := b.index[key]; ok {
		return &b.rows[i]
	}
	b.index[key] = len(b.rows)
	b.rows = append(b.rows, r)
	return &b.rows[len(b.rows)-1]
}

// order returns the hosts to measure in repetition rep: the first one
// alternates, so neither daemon always runs on a machine warmed by the other.
func (b *bench) order(rep int, i int) []*host {
	var hs []*host
	if b.lv != nil {
		hs = append(hs, b.lv.hosts[i])
	}
	hs = append(hs, b.gv.hosts[i])
	if rep%2 == 1 && len(hs) == 2 {
		hs[0], hs[1] = hs[1], hs[0]
	}
	return hs
}

func (r *row) add(kind string, v float64) {
	if kind == "libvirtd" {
		r.l = append(r.l, v)
	} else {
		r.g = append(r.g, v)
	}
}

var cleanupOnce sync.Once

func main() {
	flag.Parse()
	if err := run(); err != nil {
		logf("error: %v", err)
		os.Exit(1)
	}
}

func run() error {
	phases := map[string]bool{}
	for _, p := range strings.Split(*flagPhases, ",") {
		phases[strings.TrimSpace(p)] = true
	}
	if err := os.MkdirAll(*flagOut, 0o755); err != nil {
		return err
	}
	if err := deps.Check("virsh", "qemu-system-x86_64"); err != nil {
		return err
	}
	m := machine{
		date:       time.Now().UTC().Format("2006-01-02 15:04 UTC"),
		nproc:      runtime.NumCPU(),
		loadBefore: loadavg(),
		reps:       *flagReps,
		dur:        *flagDur,
		cpu:        cpuModel(),
		kernel:     strings.TrimSpace(cmdOut("uname", "-r")),
		qemu:       firstField(cmdOut("qemu-system-x86_64", "--version"), 3),
		libvirtd:   firstField(cmdOut("/usr/sbin/libvirtd", "--version"), 2),
	}
	m.host, _ = os.Hostname()
	b := &bench{index: map[string]int{}}

	if phases["migrate"] || phases["tuning"] {
		logf("building the test guest")
		out, err := exec.Command(*flagGuest).Output()
		if err != nil {
			return fmt.Errorf("test guest: %w", err)
		}
		f := strings.Fields(string(out))
		if len(f) < 2 {
			return fmt.Errorf("test guest: unexpected output %q", out)
		}
		b.kernel, b.initrd = f[0], f[1]
	}

	// Short: unix socket paths must fit in 108 bytes.
	root, err := os.MkdirTemp("", "gvb")
	if err != nil {
		return err
	}
	b.root = root
	cleanup := func() {
		cleanupOnce.Do(func() {
			for _, p := range []*pair{b.gv, b.lv} {
				if p != nil {
					p.hosts[0].stop()
					p.hosts[1].stop()
				}
			}
			killProcessesUnder(root)
			os.RemoveAll(root)
		})
	}
	defer cleanup()
	// Interrupted or overrunning: leave no daemon or QEMU behind.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sig
		logf("%v: cleaning up", s)
		cleanup()
		os.Exit(2)
	}()
	watchdog := time.AfterFunc(25*time.Minute, func() {
		logf("run exceeded 25 minutes: cleaning up")
		cleanup()
		os.Exit(3)
	})
	defer watchdog.Stop()

	logf("starting two govirtd hosts")
	ga, err := startGovirtd(*flagGovirtd, root, "gv-a", "127.0.77.2", 1)
	if err != nil {
		return err
	}
	b.gv = &pair{kind: "govirtd", hosts: [2]*host{ga, nil}, guest: "bench-guest"}
	gb, err := startGovirtd(*flagGovirtd, root, "gv-b", "127.0.77.3", 2)
	if err != nil {
		return err
	}
	b.gv.hosts[1] = gb

	if *flagNoLv {
		b.notes = append(b.notes, "libvirtd column skipped: -no-libvirtd was given.")
	} else if reason := libvirtdUsable(*flagLvScript); reason != "" {
		b.notes = append(b.notes, "libvirtd column skipped: "+reason)
		logf("libvirtd column skipped: %s", reason)
	} else {
		logf("starting two libvirtd hosts")
		la, err := startLibvirtd(*flagLvScript, root, "lv-a", "127.0.77.4", 1)
		var lb *host
		if err == nil {
			lb, err = startLibvirtd(*flagLvScript, root, "lv-b", "127.0.77.5", 2)
			if err != nil {
				la.stop()
			}
		}
		if err != nil {
			b.notes = append(b.notes, fmt.Sprintf("libvirtd column skipped: it did not start: %v", err))
			logf("libvirtd column skipped: %v", err)
		} else {
			b.lv = &pair{kind: "libvirtd", hosts: [2]*host{la, lb}, guest: "bench-guest"}
		}
	}

	// Warm-up: libvirtd probes QEMU's capabilities on first use (seconds);
	// govirtd probes its binaries too. Neither belongs in a timed figure.
	logf("warming up (capability probes)")
	for _, p := range []*pair{b.lv, b.gv} {
		if p == nil {
			continue
		}
		for _, h := range p.hosts {
			if err := warmUp(h); err != nil {
				return err
			}
		}
	}
	time.Sleep(2 * time.Second)
	for _, h := range b.order(0, 0) {
		v, err := procRSS(h.pid())
		if err != nil {
			return err
		}
		b.row("rss-idle", row{section: "Memory", figure: "daemon RSS, idle (after warm-up)", unit: "MB", tkind: "ratio<=", tval: 0.5, svg: true}).add(h.kind, v/1e6)
		a, err := procRSSAnon(h.pid())
		if err != nil {
			return err
		}
		b.row("anon-idle", row{section: "Memory", figure: "daemon anonymous memory (RssAnon), idle", unit: "MB"}).add(h.kind, a/1e6)
	}
	b.memStatRows("idle")

	if phases["rpc"] || phases["list"] {
		if err := b.rpcPhase(phases); err != nil {
			return err
		}
	}
	if phases["rpc"] {
		b.cpuProfile(*flagGovirtd)
	}
	if phases["migrate"] {
		if err := b.migratePhase(); err != nil {
			return err
		}
	}
	if phases["tuning"] {
		if err := b.tuningPhase(); err != nil {
			return err
		}
	}

	// After the run: everything undefined, a pause for the daemons to
	// return what they can.
	logf("memory after the run (5 s pause)")
	time.Sleep(5 * time.Second)
	for _, h := range b.order(0, 0) {
		v, err := procRSS(h.pid())
		if err != nil {
			return err
		}
		b.row("rss-after", row{section: "Memory", figure: "daemon RSS after the run (all undefined, 5 s pause)", unit: "MB", svg: true}).add(h.kind, v/1e6)
		a, err := procRSSAnon(h.pid())
		if err != nil {
			return err
		}
		b.row("anon-after", row{section: "Memory", figure: "daemon anonymous memory (RssAnon) after the run", unit: "MB"}).add(h.kind, a/1e6)
	}
	b.memStatRows("after the run")
	// "Near idle": within a quarter of the idle figure. Judged on the
	// daemon's own (anonymous) memory: VmRSS also grows by the executable's
	// pages that the run's code paths touched once (file pages, shared and
	// reclaimable), which no daemon gives back.
	if i, ok := b.index["anon-idle"]; ok {
		r := b.row("anon-after", row{})
		r.tkind, r.tval = "abs<=", median(b.rows[i].g)*1.25
	}

	cleanup()
	m.loadAfter = loadavg()
	m.elapsed = time.Since(t0)
	m.notes = b.notes
	return b.write(m)
}

func (b *bench) write(m machine) error {
	md := markdown(m, b.rows)
	svg := svgReport(m, b.rows, b.tls)
	stamp := time.Now().UTC().Format("20060102-150405")
	files := map[string]string{
		"latest.md":               md,
		"latest.svg":              svg,
		"bench-" + stamp + ".md":  md,
		"bench-" + stamp + ".svg": svg,
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(*flagOut, name), []byte(data), 0o644); err != nil {
			return err
		}
	}
	fmt.Print(md)
	logf("wrote %s and %s", filepath.Join(*flagOut, "latest.md"), filepath.Join(*flagOut, "latest.svg"))
	return nil
}

// libvirtdUsable returns why the libvirtd column cannot run, or "".
func libvirtdUsable(script string) string {
	if os.Geteuid() != 0 {
		return "the namespaced libvirtd needs root"
	}
	if _, err := os.Stat(script); err != nil {
		return err.Error()
	}
	if err := deps.Check("unshare", "/usr/sbin/libvirtd", "/etc/libvirt/libvirtd.conf", "/usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so"); err != nil {
		return err.Error()
	}
	return ""
}

func warmUp(h *host) error {
	l, err := h.dial()
	if err != nil {
		return err
	}
	defer l.Disconnect()
	if _, err := l.ConnectGetCapabilities(); err != nil {
		return fmt.Errorf("warm-up %s: %w", h.name, err)
	}
	// A define + undefine exercises the XML and domain-caps paths once.
	d, err := l.DomainDefineXML(domainXML("bench-warmup"))
	if err != nil {
		return fmt.Errorf("warm-up define on %s: %w", h.name, err)
	}
	return l.DomainUndefine(d)
}

func (b *bench) rpcPhase(phases map[string]bool) error {
	reps, dur := *flagReps, *flagDur
	conns := []int{1, 8, 64}
	have := 0
	for _, n := range []int{10, 100, 1000} {
		logf("defining %d domains on each daemon", n)
		for _, h := range b.order(0, 0) {
			if err := defineUpTo(h, have, n); err != nil {
				return err
			}
		}
		have = n
		var wls []workload
		if phases["rpc"] {
			if n == 10 {
				wls = append(wls, simpleWorkloads(n, nil)...)
			}
			wls = append(wls, listAllWorkload(n))
		}
		for wi := range wls {
			for _, c := range conns {
				for rep := 0; rep < reps; rep++ {
					for _, h := range b.order(rep, 0) {
						w := wls[wi]
						if w.name == "DomainGetXMLDesc" {
							// The per-object call needs this host's Domain values.
							ds, err := lookupAll(h, n)
							if err != nil {
								return err
							}
							w = simpleWorkloads(n, ds)[2]
						}
						res, err := runRPC(h, w, c, dur)
						if err != nil {
							return err
						}
						logf("%-28s %2d conn  %-8s %8.0f ops/s  p50 %7.3f ms  p99 %7.3f ms  cpu %6.1f µs/call  errors %d",
							w.name, c, h.kind, res.opsPerSec, ms(res.p50), ms(res.p99), float64(res.cpuPerCall)/1e3, res.errs)
						b.recordRPC(w, c, h.kind, res)
					}
				}
			}
		}
		if phases["list"] && (n == 10 || n == 1000) {
			r := b.row(fmt.Sprintf("virsh-list-%d", n), row{section: "virsh", figure: fmt.Sprintf("`virsh list --all`, %d domains (whole process)", n), unit: "ms", svg: true})
			for rep := 0; rep < max(reps, 5); rep++ {
				for _, h := range b.order(rep, 0) {
					d, err := virshList(h, n)
					if err != nil {
						return err
					}
					r.add(h.kind, ms(d))
				}
			}
			logf("virsh list --all, %d domains: libvirtd %v ms, govirtd %v ms", n, r.l, r.g)
		}
		if n == 1000 {
			for _, h := range b.order(0, 0) {
				v, err := procRSS(h.pid())
				if err != nil {
					return err
				}
				b.row("rss-1000", row{section: "Memory", figure: "daemon RSS, 1000 domains defined (after the list runs)", unit: "MB", svg: true}).add(h.kind, v/1e6)
			}
		}
	}
	logf("undefining the bench domains")
	for _, h := range b.order(0, 0) {
		if err := undefineBench(h); err != nil {
			return err
		}
	}
	if phases["rpc"] {
		// Separates what the domain list leaves behind from what the
		// migrations below do.
		time.Sleep(5 * time.Second)
		for _, h := range b.order(0, 0) {
			v, err := procRSS(h.pid())
			if err != nil {
				return err
			}
			b.row("rss-undef", row{section: "Memory", figure: "daemon RSS after undefining the 1000 domains (5 s pause)", unit: "MB"}).add(h.kind, v/1e6)
		}
	}
	return nil
}

func (b *bench) recordRPC(w workload, c int, kind string, res rpcResult) {
	simple := w.name == "ConnectGetLibVersion" || w.name == "DomainLookupByName" || w.name == "DomainGetXMLDesc"
	sec := "RPC, " + w.name
	tp := row{section: sec, figure: fmt.Sprintf("%s, %d conn: throughput", w.name, c), unit: "calls/s", higher: true, svg: true}
	if simple {
		tp.tkind, tp.tval = "ratio>=", 2.5
		if c == 1 {
			tp.tval = 1.5
		}
	}
	if w.name == "ConnectListAllDomains (1000)" {
		tp.tkind, tp.tval = "ratio>=", 3
	}
	b.row(fmt.Sprintf("%s/%d/ops", w.name, c), tp).add(kind, res.opsPerSec)
	b.row(fmt.Sprintf("%s/%d/p50", w.name, c), row{section: sec, figure: fmt.Sprintf("%s, %d conn: p50 latency", w.name, c), unit: "ms"}).add(kind, ms(res.p50))
	p99 := row{section: sec, figure: fmt.Sprintf("%s, %d conn: p99 latency", w.name, c), unit: "ms"}
	if c == 64 {
		p99.svg = true
		if simple {
			p99.tkind, p99.tval = "ratio<=", 0.3
		}
	}
	b.row(fmt.Sprintf("%s/%d/p99", w.name, c), p99).add(kind, ms(res.p99))
	if c == 8 {
		b.row(fmt.Sprintf("%s/cpu", w.name), row{section: sec, figure: fmt.Sprintf("%s: daemon CPU per call (8 conn)", w.name), unit: "µs"}).add(kind, float64(res.cpuPerCall)/1e3)
	}
	if c == 64 && simple {
		// The same client for both daemons; printed because at 64
		// connections the client and the daemon split the machine's cores.
		b.row(fmt.Sprintf("%s/clientcpu", w.name), row{section: sec, figure: fmt.Sprintf("%s: client CPU per call (64 conn)", w.name), unit: "µs"}).add(kind, float64(res.clientCPUPerCall)/1e3)
	}
}

// virshList times one `virsh list --all` process and checks it listed the
// domains.
func virshList(h *host, n int) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	t := time.Now()
	out, err := exec.CommandContext(ctx, "virsh", "-c", h.uri(), "list", "--all").CombinedOutput()
	d := time.Since(t)
	if err != nil {
		return 0, fmt.Errorf("virsh list on %s: %v: %s", h.kind, err, tail(out, 300))
	}
	if c := strings.Count(string(out), "bench-"); c < n {
		return 0, fmt.Errorf("virsh list on %s showed %d bench domains, want %d", h.kind, c, n)
	}
	return d, nil
}

func (b *bench) migratePhase() error {
	reps := *flagReps
	pairs := []*pair{b.gv}
	if b.lv != nil {
		pairs = []*pair{b.lv, b.gv}
	}
	// alternate returns the pairs in rep's order (see order).
	alternate := func(rep int) []*pair {
		if rep%2 == 1 && len(pairs) == 2 {
			return []*pair{pairs[1], pairs[0]}
		}
		return pairs
	}
	for _, dirty := range []bool{false, true} {
		guest := "idle"
		if dirty {
			guest = "dirtying 20 MiB/s"
		}
		for _, p := range pairs {
			serial := filepath.Join(b.root, p.kind+"-serial-"+strings.Fields(guest)[0]+".log")
			uuid := "b7c1a9e0-5d2f-4e7a-9c3b-000000000001"
			if dirty {
				uuid = "b7c1a9e0-5d2f-4e7a-9c3b-000000000002"
			}
			p.guest = "bench-guest-" + strings.Fields(guest)[0]
			p.cur = 0
			if err := p.defineOnBoth(guestXML(p.guest, uuid, b.kernel, b.initrd, serial, dirty)); err != nil {
				return err
			}
			logf("booting the %s guest on %s", guest, p.hosts[0].name)
			if err := p.startGuest(serial); err != nil {
				return err
			}
		}
		for rep := 0; rep < reps; rep++ {
			for _, p2p := range []bool{false, true} {
				mode := "managed"
				if p2p {
					mode = "p2p"
				}
				for _, p := range alternate(rep) {
					from, to := p.src().name, p.dst().name
					var r migResult
					err := alone(p, pairs, func() (err error) {
						r, err = p.virshMigrate(p2p, 0)
						return err
					})
					if err != nil {
						return err
					}
					logf("migrate %s guest %s→%s (%s): wall %.0f ms, elapsed %.0f ms, downtime %.0f ms", guest, from, to, mode, ms(r.wall), ms(r.elapsed), ms(r.downtime))
					b.recordMigration(guest, mode, p.kind, r)
				}
			}
		}
		if !dirty {
			// Step timeline, driven with go-libvirt.
			steps := map[string][][]time.Duration{}
			for rep := 0; rep < reps; rep++ {
				for _, p := range alternate(rep) {
					var s []time.Duration
					err := alone(p, pairs, func() (err error) {
						s, err = p.driveMigration()
						return err
					})
					if err != nil {
						return fmt.Errorf("%s: client-driven migration: %w", p.kind, err)
					}
					logf("client-driven migration on %s: %v", p.kind, s)
					steps[p.kind] = append(steps[p.kind], s)
					for i, d := range s {
						b.row("step-"+stepNames[i], row{section: "Migration steps (client-managed, idle guest, go-libvirt)", figure: stepNames[i] + stepHint[i], unit: "ms"}).add(p.kind, ms(d))
					}
					var tot time.Duration
					for _, d := range s {
						tot += d
					}
					b.row("step-total", row{section: "Migration steps (client-managed, idle guest, go-libvirt)", figure: "all five steps", unit: "ms"}).add(p.kind, ms(tot))
				}
			}
			for _, p := range pairs {
				// The repetition with the median total is the one drawn.
				runs := steps[p.kind]
				idx := medianRun(runs)
				b.tls = append(b.tls, timeline{kind: p.kind, steps: runs[idx]})
			}
			// Status queries while a slowed migration runs.
			for rep := 0; rep < reps; rep++ {
				for _, p := range alternate(rep) {
					var lats []time.Duration
					var wall time.Duration
					err := alone(p, pairs, func() (err error) {
						lats, wall, err = p.statusDuringMigration(10)
						return err
					})
					if err != nil {
						return err
					}
					p50, p99 := durPercentile(lats, 0.5), durPercentile(lats, 0.99)
					logf("status queries during a %s migration (%.1f s, --bandwidth 10): %d calls, p50 %.2f ms, p99 %.2f ms, max %.0f ms", p.kind, wall.Seconds(), len(lats), ms(p50), ms(p99), ms(durPercentile(lats, 1)))
					sec := "Status queries during a migration (idle guest, --bandwidth 10)"
					b.row("status-p50", row{section: sec, figure: "GetJobInfo/GetInfo p50", unit: "ms"}).add(p.kind, ms(p50))
					b.row("status-p99", row{section: sec, figure: "GetJobInfo/GetInfo p99", unit: "ms", tkind: "abs<", tval: 100, svg: true}).add(p.kind, ms(p99))
					b.row("status-max", row{section: sec, figure: "GetJobInfo/GetInfo max", unit: "ms"}).add(p.kind, ms(durPercentile(lats, 1)))
					b.row("status-wall", row{section: sec, figure: "that migration's wall time", unit: "ms"}).add(p.kind, ms(wall))
				}
			}
		}
		for _, p := range pairs {
			p.removeGuest()
		}
	}
	return nil
}

func (b *bench) recordMigration(guest, mode, kind string, r migResult) {
	sec := fmt.Sprintf("Migration, %s guest (128 MiB, TCG)", guest)
	idle := guest == "idle"
	w := row{section: sec, figure: fmt.Sprintf("`virsh migrate --live` %s: wall", mode), unit: "ms", svg: true}
	if idle {
		w.tkind, w.tval = "ratio<=", 0.1
	}
	b.row(sec+mode+"wall", w).add(kind, ms(r.wall))
	b.row(sec+mode+"elapsed", row{section: sec, figure: fmt.Sprintf("%s: job time elapsed (domjobinfo --completed)", mode), unit: "ms"}).add(kind, ms(r.elapsed))
	b.row(sec+mode+"downtime", row{section: sec, figure: fmt.Sprintf("%s: total downtime", mode), unit: "ms"}).add(kind, ms(r.downtime))
	o := row{section: sec, figure: fmt.Sprintf("%s: orchestration overhead (wall − elapsed)", mode), unit: "ms", svg: idle}
	if idle {
		o.tkind, o.tval = "abs<=", 100
	}
	b.row(sec+mode+"overhead", o).add(kind, ms(r.wall-r.elapsed))
}

// medianRun returns the index of the run whose total is the median.
func medianRun(runs [][]time.Duration) int {
	type t struct {
		i   int
		tot time.Duration
	}
	ts := make([]t, len(runs))
	for i, r := range runs {
		ts[i].i = i
		for _, d := range r {
			ts[i].tot += d
		}
	}
	for i := 1; i < len(ts); i++ {
		for j := i; j > 0 && ts[j].tot < ts[j-1].tot; j-- {
			ts[j], ts[j-1] = ts[j-1], ts[j]
		}
	}
	return ts[len(ts)/2].i
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return "unknown CPU"
}

func cmdOut(name string, args ...string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, name, args...).Output()
	return string(out)
}

// firstField returns the i-th field of the first line, or "?".
func firstField(s string, i int) string {
	line, _, _ := strings.Cut(s, "\n")
	f := strings.Fields(line)
	if i < len(f) {
		return f[i]
	}
	return "?"
}
