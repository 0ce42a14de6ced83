package compat_test

import (
	"bytes"
	"context"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Post-copy migration with real virsh and QEMU: a guest that rewrites its
// memory faster than the link carries it never converges in pre-copy, and
// gets across once switched to post-copy.

// nonConverging is a guest that dirties 64 MiB at 32 MiB/s, checking
// every page it wrote; with --bandwidth 8 (MiB/s) pre-copy cannot finish:
// each pass finds the whole 64 MiB dirty again.
var nonConverging = GuestOptions{MemoryMiB: 192, DirtyMB: 64, DirtyRate: 32}

// throttleable is nonConverging in 40 ms bursts instead of 200 ms ones.
// Auto-converge throttles by letting the vCPU run about 10 ms a second at
// 99 %; a guest that wakes once in that slot still does one tick's work, so
// with 200 ms ticks it kept dirtying 6.4 MiB/s, close to the 8 MiB/s link,
// and finishing took minutes or never came. With 40 ms ticks throttling
// cuts the rate as it would for a CPU-bound guest.
var throttleable = GuestOptions{MemoryMiB: 192, DirtyMB: 64, DirtyRate: 32, TickMS: 40}

// lockedBuffer collects a command's output while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// watchEvents runs `virsh event --all --loop` against uri until the test ends.
func watchEvents(t *testing.T, uri string) *lockedBuffer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	cmd := exec.CommandContext(ctx, "virsh", "-c", uri, "event", "--all", "--loop")
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	time.Sleep(300 * time.Millisecond) // registered before anything happens
	return out
}

// waitOutput waits for want in out.
func waitOutput(t *testing.T, out *lockedBuffer, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in:\n%s", want, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// background runs a command and delivers its result when it ends.
func background(t *testing.T, timeout time.Duration, name string, args ...string) <-chan Result {
	done := make(chan Result, 1)
	go func() { done <- run(t, timeout, name, args...) }()
	return done
}

var jobIteration = regexp.MustCompile(`(?m)^Iteration:\s+(\d+)`)

// assertNotConverging watches the source's job for the given time and
// fails if the migration ends: the guest dirties memory faster than the
// bandwidth allows, so pre-copy must still be running, pass after pass.
func assertNotConverging(t *testing.T, h *Host, name string, migrate <-chan Result, watch time.Duration) {
	t.Helper()
	deadline := time.Now().Add(watch)
	iteration := 0
	for time.Now().Before(deadline) {
		select {
		case r := <-migrate:
			t.Fatalf("pre-copy migration ended within %s although the guest dirties memory faster than the bandwidth: %s", watch, r)
		case <-time.After(time.Second):
		}
		r := Virsh(t, h.URI(), "domjobinfo", name)
		if m := jobIteration.FindStringSubmatch(r.Stdout); m != nil {
			iteration, _ = strconv.Atoi(m[1])
		}
	}
	r := Virsh(t, h.URI(), "domjobinfo", name)
	if !strings.Contains(r.Stdout, "Unbounded") {
		t.Fatalf("no migration job on %s after %s: %s", h.Name, watch, r)
	}
	if iteration < 2 {
		t.Fatalf("pre-copy made %d passes in %s; want at least 2 to show it does not converge", iteration, watch)
	}
	t.Logf("pre-copy still running after %s, %d passes", watch, iteration)
}

// TestMigratePostcopy: the guest does not converge in pre-copy; switched
// with `virsh migrate-postcopy` (managed) or --postcopy-after-precopy
// (peer-to-peer), it finishes, every page intact, same boot, with
// libvirt's post-copy events on both hosts.
func TestMigratePostcopy(t *testing.T) {
	t.Parallel()
	a, b, serial := twoHosts(t, "pc", nonConverging)
	evA, evB := watchEvents(t, a.URI()), watchEvents(t, b.URI())

	// Refused before and outside a post-copy migration, in libvirt's words.
	if r := Virsh(t, a.URI(), "migrate-postcopy", "pc"); r.Err == nil || !strings.Contains(r.Stderr, "post-copy can only be started while outgoing migration is in progress") {
		t.Fatalf("migrate-postcopy without a migration: %s", r)
	}
	if r := Virsh(t, a.URI(), "migrate", "--live", "--p2p", "--tunnelled", "--postcopy", "pc", b.URI()); r.Err == nil || !strings.Contains(r.Stderr, "post-copy is not supported with tunnelled migration") {
		t.Fatalf("tunnelled post-copy: %s", r)
	}

	// Managed: pre-copy runs and does not converge, then migrate-postcopy.
	before, _ := LastTick(serial)
	migrate := background(t, 4*time.Minute, "virsh", "-c", a.URI(), "migrate", "--live", "--postcopy", "--bandwidth", "8", "pc", b.URI())
	assertNotConverging(t, a, "pc", migrate, 25*time.Second)
	MustVirsh(t, a.URI(), "migrate-postcopy", "pc")
	if r := <-migrate; r.Err != nil {
		t.Fatalf("post-copy migration: %s", r)
	}
	after := checkMoved(t, a, b, "pc", serial, before)
	waitOutput(t, evA, "event 'lifecycle' for domain 'pc': Suspended Post-copy", 10*time.Second)
	waitOutput(t, evA, "event 'lifecycle' for domain 'pc': Stopped Migrated", 10*time.Second)
	waitOutput(t, evB, "event 'lifecycle' for domain 'pc': Resumed Post-copy", 10*time.Second)
	waitOutput(t, evB, "event 'lifecycle' for domain 'pc': Resumed Migrated", 10*time.Second)
	if st := domstate(t, b, "pc"); st != "running (migrated)" {
		t.Fatalf("destination state after post-copy: %q", st)
	}
	if r := MustVirsh(t, a.URI(), "domjobinfo", "--completed", "pc"); !strings.Contains(r, "Completed") {
		t.Fatalf("source's completed job: %s", r)
	}

	// Back, peer-to-peer, switched by virsh after the first pass.
	if r := run(t, 4*time.Minute, "virsh", "-c", b.URI(), "migrate", "--live", "--p2p", "--postcopy", "--postcopy-after-precopy", "--bandwidth", "8", "pc", a.URI()); r.Err != nil {
		t.Fatalf("p2p post-copy migration back: %s", r)
	}
	checkMoved(t, b, a, "pc", serial, after)
	waitOutput(t, evB, "event 'lifecycle' for domain 'pc': Suspended Post-copy", 10*time.Second)
	waitOutput(t, evA, "event 'lifecycle' for domain 'pc': Resumed Post-copy", 10*time.Second)
}

// TestMigratePostcopyFlagChecks: a migration without --postcopy cannot be
// switched, and the post-copy bandwidth is QEMU's own setting.
func TestMigratePostcopyFlagChecks(t *testing.T) {
	t.Parallel()
	a, b, _ := twoHosts(t, "pf", nonConverging)
	migrate := background(t, 2*time.Minute, "virsh", "-c", a.URI(), "migrate", "--live", "--bandwidth", "8", "pf", b.URI())
	time.Sleep(3 * time.Second)
	if r := Virsh(t, a.URI(), "migrate-postcopy", "pf"); r.Err == nil || !strings.Contains(r.Stderr, "switching to post-copy requires migration to be started with VIR_MIGRATE_POSTCOPY flag") {
		t.Fatalf("migrate-postcopy of a pre-copy-only migration: %s", r)
	}
	if r := Virsh(t, a.URI(), "domjobabort", "--postcopy", "pf"); r.Err == nil || !strings.Contains(r.Stderr, "current job is not outgoing migration in post-copy mode") {
		t.Fatalf("domjobabort --postcopy in pre-copy: %s", r)
	}
	MustVirsh(t, a.URI(), "domjobabort", "pf")
	if r := <-migrate; r.Err == nil || !strings.Contains(r.Stderr, "canceled by client") {
		t.Fatalf("aborted migration: %s", r)
	}
	if st := domstate(t, a, "pf"); !strings.HasPrefix(st, "running") {
		t.Fatalf("source after the abort: %s", st)
	}
	MustVirsh(t, a.URI(), "migrate-setspeed", "--postcopy", "pf", "7")
	if got := strings.TrimSpace(MustVirsh(t, a.URI(), "migrate-getspeed", "--postcopy", "pf")); got != "7" {
		t.Fatalf("migrate-getspeed --postcopy = %q, want 7", got)
	}
	// The xbzrle cache (migrate-compcache), QEMU's own setting.
	if got := MustVirsh(t, a.URI(), "migrate-compcache", "pf", "--size", "67108864"); !strings.Contains(got, "Compression cache: 64.000 MiB") {
		t.Fatalf("migrate-compcache --size: %q", got)
	}
	if got := MustVirsh(t, a.URI(), "migrate-compcache", "pf"); !strings.Contains(got, "Compression cache: 64.000 MiB") {
		t.Fatalf("migrate-compcache: %q", got)
	}
}

// waitState waits for a domain's `domstate --reason` to be want.
func waitState(t *testing.T, h *Host, name, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := domstate(t, h, name)
		if st == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s on %s is %q after %s, want %q", name, h.Name, st, timeout, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestMigratePostcopyRecovery: the connection breaks in post-copy
// (domjobabort --postcopy, libvirt's way to cut it); the migration fails
// with libvirt's error, the guest is kept on both hosts (paused on the
// source, waiting for pages on the destination), nothing is killed, and
// `virsh migrate --postcopy --postcopy-resume` finishes the move with
// every page intact.
func TestMigratePostcopyRecovery(t *testing.T) {
	t.Parallel()
	testPostcopyRecovery(t, "pr")
}

// TestMigratePostcopyRecoveryP2P is the same in peer-to-peer mode, the
// source daemon driving the destination in the migration and in its
// recovery.
func TestMigratePostcopyRecoveryP2P(t *testing.T) {
	t.Parallel()
	testPostcopyRecovery(t, "pq", "--p2p")
}

func testPostcopyRecovery(t *testing.T, name string, mode ...string) {
	a, b, serial := twoHosts(t, name, nonConverging)
	before, _ := LastTick(serial)
	migrate := func(args ...string) []string {
		argv := append([]string{"-c", a.URI(), "migrate", "--live"}, mode...)
		return append(append(argv, args...), name, b.URI())
	}
	// A slow post-copy phase, so there is time to break it.
	migrating := background(t, 3*time.Minute, "virsh", migrate("--postcopy", "--bandwidth", "8", "--postcopy-bandwidth", "1")...)
	time.Sleep(3 * time.Second)
	MustVirsh(t, a.URI(), "migrate-postcopy", name)
	waitState(t, b, name, "running (post-copy)", time.Minute)
	waitState(t, a, name, "paused (post-copy)", 10*time.Second)

	MustVirsh(t, a.URI(), "domjobabort", "--postcopy", name)
	r := <-migrating
	if r.Err == nil || !strings.Contains(r.Stderr, "failed in post-copy phase") {
		t.Fatalf("migration whose post-copy connection broke: %s", r)
	}
	waitState(t, a, name, "paused (post-copy failed)", 10*time.Second)
	waitState(t, b, name, "running (post-copy failed)", 10*time.Second)
	if len(a.QEMUPids()) != 1 || len(b.QEMUPids()) != 1 {
		t.Fatalf("after the break: QEMU on %s %v, on %s %v; want one each", a.Name, a.QEMUPids(), b.Name, b.QEMUPids())
	}
	// Only a recovery may continue it; a new migration is refused, and
	// so is a recovery of a domain that has nothing to recover.
	if r := run(t, time.Minute, "virsh", migrate("--postcopy")...); r.Err == nil || !strings.Contains(r.Stderr, "has a failed post-copy migration: resume it with --postcopy-resume") {
		t.Fatalf("a fresh migration of a guest split by a failed post-copy was accepted: %s", r)
	}
	if r := Virsh(t, b.URI(), append(append([]string{"migrate", "--live"}, mode...), "--postcopy", "--postcopy-resume", name, a.URI())...); r.Err == nil || !strings.Contains(r.Stderr, "has no failed post-copy migration to resume") {
		t.Fatalf("recovery from the destination's side: %s", r)
	}

	if r := run(t, 4*time.Minute, "virsh", migrate("--postcopy", "--postcopy-resume", "--postcopy-bandwidth", "1000")...); r.Err != nil {
		t.Fatalf("post-copy recovery: %s", r)
	}
	checkMoved(t, a, b, name, serial, before)
	if st := domstate(t, b, name); st != "running (migrated)" {
		t.Fatalf("destination after the recovery: %q", st)
	}
}

// TestNonConvergingFinishesWithAutoConverge: the guest that pre-copy
// cannot get across at --bandwidth 8 (TestMigratePostcopy shows it)
// finishes with --auto-converge (started high, so the test is short),
// every page intact.
//
// Measured here and left out: --compressed (xbzrle) does not get this
// guest across in 4 minutes — it rewrites every word of the pages it
// dirties, so the deltas are as large as the pages; --parallel did not
// finish in 4 minutes as the first move, and once (after another move)
// finished in 13 s but left the guest hung on the destination: QEMU 7.2's
// multifd under TCG with a guest dirtying this fast is not trusted here.
func TestNonConvergingFinishesWithAutoConverge(t *testing.T) {
	t.Parallel()
	a, b, serial := twoHosts(t, "tu", throttleable)
	before, _ := LastTick(serial)
	start := time.Now()
	if r := run(t, 4*time.Minute, "virsh", "-c", a.URI(), "migrate", "--live", "--bandwidth", "8",
		"--auto-converge", "--auto-converge-initial", "90", "--auto-converge-increment", "5", "tu", b.URI()); r.Err != nil {
		t.Fatal(r)
	}
	t.Logf("auto-converge: %s", time.Since(start).Round(time.Second))
	checkMoved(t, a, b, "tu", serial, before)
}
