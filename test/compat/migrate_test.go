package compat_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govirtd/govirtd/test/deps"
)

// twoHosts starts hosts A and B and defines and starts the test guest on A.
func twoHosts(t *testing.T, name string, guest GuestOptions) (a, b *Host, serial string) {
	t.Helper()
	deps.Require(t, "virsh", "qemu-system-x86_64")
	a = StartHost(t, HostOptions{Name: name + "-a"})
	b = StartHost(t, HostOptions{Name: name + "-b"})
	// One serial log for the guest wherever it runs: each QEMU appends.
	serial = filepath.Join(a.Dir, "guest.serial")
	guest.Name, guest.Serial = name, serial
	defineGuest(t, a, guest)
	MustVirsh(t, a.URI(), "start", name)
	WaitTicks(t, serial, 2, 60*time.Second)
	return a, b, serial
}

// checkMoved: the guest runs on to and not on from, and its serial output
// continues the same boot with the next counter values and no memory
// mismatch: the running state moved; it was not rebooted.
func checkMoved(t *testing.T, from, to *Host, name, serial string, before Tick) Tick {
	t.Helper()
	if st := domstate(t, to, name); !strings.HasPrefix(st, "running") {
		t.Fatalf("%s on %s after migration: %s", name, to.Name, st)
	}
	if r := Virsh(t, from.URI(), "domstate", name); r.Err == nil && strings.HasPrefix(strings.TrimSpace(r.Stdout), "running") {
		t.Fatalf("%s still running on the source %s too", name, from.Name)
	}
	after, ok := waitTicks(serial, before.N+3, 60*time.Second)
	if !ok {
		logStuckGuest(t, to.URI(), name)
		data, _ := os.ReadFile(serial)
		t.Fatalf("after %s -> %s the guest did not tick past %d within 60s; serial log:\n%s", from.Name, to.Name, before.N+3, tail(string(data), 20))
	}
	if after.BootID != before.BootID {
		t.Fatalf("guest rebooted during migration: boot id %s -> %s", before.BootID, after.BootID)
	}
	if after.Mism != 0 {
		t.Fatalf("guest reports %d memory mismatches after migration", after.Mism)
	}
	// No counter value repeats or goes back: one guest, moved once.
	ticks := Ticks(serial)
	for i := 1; i < len(ticks); i++ {
		if ticks[i].BootID == before.BootID && ticks[i].N <= ticks[i-1].N {
			t.Fatalf("counter went from %d to %d: two guests wrote the log?", ticks[i-1].N, ticks[i].N)
		}
	}
	if pids := from.QEMUPids(); len(pids) != 0 {
		t.Fatalf("QEMU still running on the source %s: %v", from.Name, pids)
	}
	return after
}

// TestMigrateManagedAndPeerToPeer: virsh migrate --live --verbose A→B
// (client-managed), then --p2p back B→A.
func TestMigrateManagedAndPeerToPeer(t *testing.T) {
	t.Parallel()
	a, b, serial := twoHosts(t, "mg", GuestOptions{DirtyMB: 16, DirtyRate: 4})

	before, _ := LastTick(serial)
	r := run(t, 2*time.Minute, "virsh", "-c", a.URI(), "migrate", "--live", "--verbose", "mg", b.URI())
	if r.Err != nil {
		t.Fatalf("managed migration: %s", r)
	}
	if !strings.Contains(r.Stdout+r.Stderr, "Migration: [100 %]") {
		t.Errorf("--verbose printed no progress:\n%s", r)
	}
	mid := checkMoved(t, a, b, "mg", serial, before)
	if st := domstate(t, a, "mg"); st != "shut off (migrated)" {
		t.Errorf("source after migration: %q", st)
	}
	if info := MustVirsh(t, b.URI(), "dominfo", "mg"); !strings.Contains(info, "Persistent:     no") {
		t.Errorf("destination copy should be transient without --persistent:\n%s", info)
	}
	if ji := MustVirsh(t, a.URI(), "domjobinfo", "--completed", "mg"); !strings.Contains(ji, "Job type:         Completed") || !strings.Contains(ji, "Memory processed:") {
		t.Errorf("domjobinfo --completed on the source:\n%s", ji)
	}

	r = run(t, 2*time.Minute, "virsh", "-c", b.URI(), "migrate", "--live", "--p2p", "mg", a.URI())
	if r.Err != nil {
		t.Fatalf("p2p migration back: %s", r)
	}
	checkMoved(t, b, a, "mg", serial, mid)
	if out := MustVirsh(t, b.URI(), "list", "--all", "--name"); strings.Contains(out, "mg") {
		t.Errorf("transient copy still listed on %s after leaving:\n%s", b.Name, out)
	}
	MustVirsh(t, a.URI(), "destroy", "mg")
}

// TestMigratePersistentUndefineSource: --persistent --undefinesource moves
// the definition too.
func TestMigratePersistentUndefineSource(t *testing.T) {
	t.Parallel()
	a, b, serial := twoHosts(t, "pu", GuestOptions{})
	before, _ := LastTick(serial)
	if r := run(t, 2*time.Minute, "virsh", "-c", a.URI(), "migrate", "--live", "--persistent", "--undefinesource", "pu", b.URI()); r.Err != nil {
		t.Fatal(r)
	}
	checkMoved(t, a, b, "pu", serial, before)
	if info := MustVirsh(t, b.URI(), "dominfo", "pu"); !strings.Contains(info, "Persistent:     yes") {
		t.Errorf("destination not persistent:\n%s", info)
	}
	if out := MustVirsh(t, a.URI(), "list", "--all", "--name"); strings.Contains(out, "pu") {
		t.Errorf("source still defines the domain:\n%s", out)
	}
	MustVirsh(t, b.URI(), "destroy", "pu")
	if out := MustVirsh(t, b.URI(), "list", "--all", "--name"); !strings.Contains(out, "pu") {
		t.Errorf("definition lost on the destination after destroy:\n%s", out)
	}
}

// TestMigrateOfflineSuspendDname: --offline --persistent copies the
// definition only; --suspend leaves the destination paused; --dname renames.
func TestMigrateOfflineSuspendDname(t *testing.T) {
	t.Parallel()
	a, b, serial := twoHosts(t, "od", GuestOptions{})
	if r := run(t, time.Minute, "virsh", "-c", a.URI(), "migrate", "--offline", "--persistent", "od", b.URI()); r.Err != nil {
		t.Fatal(r)
	}
	if st := domstate(t, b, "od"); st != "shut off" && !strings.HasPrefix(st, "shut off") {
		t.Errorf("offline copy on destination: %q", st)
	}
	if st := domstate(t, a, "od"); !strings.HasPrefix(st, "running") {
		t.Errorf("source after offline migration: %q", st)
	}
	MustVirsh(t, b.URI(), "undefine", "od")

	before, _ := LastTick(serial)
	if r := run(t, 2*time.Minute, "virsh", "-c", a.URI(), "migrate", "--live", "--suspend", "--dname", "od2", "od", b.URI()); r.Err != nil {
		t.Fatal(r)
	}
	if st := domstate(t, b, "od2"); st != "paused (user)" {
		t.Errorf("--suspend --dname: destination %q", st)
	}
	MustVirsh(t, b.URI(), "resume", "od2")
	after := WaitTicks(t, serial, before.N+3, 60*time.Second)
	if after.BootID != before.BootID {
		t.Errorf("guest rebooted: %s -> %s", before.BootID, after.BootID)
	}
	MustVirsh(t, b.URI(), "destroy", "od2")
}

// TestMigrateAbortLeavesSourceRunning: domjobabort during a slowed
// migration (--bandwidth 1) ends it with libvirt's error, and the guest
// keeps running on the source.
func TestMigrateAbortLeavesSourceRunning(t *testing.T) {
	t.Parallel()
	a, b, serial := twoHosts(t, "ab", GuestOptions{DirtyMB: 32, DirtyRate: 8})
	done := make(chan Result, 1)
	go func() {
		done <- run(t, 3*time.Minute, "virsh", "-c", a.URI(), "migrate", "--live", "--bandwidth", "1", "ab", b.URI())
	}()
	// Wait until the migration runs, then abort it.
	deadline := time.Now().Add(30 * time.Second)
	for {
		ji := Virsh(t, a.URI(), "domjobinfo", "ab")
		if strings.Contains(ji.Stdout, "Unbounded") && strings.Contains(ji.Stdout, "Data processed") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("migration never showed up in domjobinfo: %s", ji)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if sp := strings.TrimSpace(MustVirsh(t, a.URI(), "migrate-getspeed", "ab")); sp != "1" {
		t.Errorf("migrate-getspeed during --bandwidth 1: %q", sp)
	}
	MustVirsh(t, a.URI(), "domjobabort", "ab")
	r := <-done
	if r.Err == nil || !strings.Contains(r.Stderr, "operation aborted: job 'migration out' canceled by client") {
		t.Fatalf("aborted migration: %s", r)
	}
	if st := domstate(t, a, "ab"); !strings.HasPrefix(st, "running") {
		t.Errorf("source after abort: %q", st)
	}
	if out := MustVirsh(t, b.URI(), "list", "--all", "--name"); strings.Contains(out, "ab") {
		t.Errorf("destination kept a copy after abort:\n%s", out)
	}
	before, _ := LastTick(serial)
	WaitTicks(t, serial, before.N+2, 30*time.Second)
	MustVirsh(t, a.URI(), "destroy", "ab")
}

// TestMigratePausedStaysPaused: a guest keeps its run state across every
// migration mode (managed, --p2p, --p2p --tunnelled) with every
// definition option: running stays running, paused (without --suspend)
// stays paused, as with libvirtd, where the client library (managed) or
// the source daemon (peer-to-peer) adds VIR_MIGRATE_PAUSED.
func TestMigratePausedStaysPaused(t *testing.T) {
	t.Parallel()
	modes := []struct{ name, flags string }{
		{"managed", ""}, {"p2p", "--p2p"}, {"tunnelled", "--p2p --tunnelled"},
	}
	for _, opt := range []struct{ name, flags string }{
		{"live", "--live"},
		{"persistent", "--live --persistent"},
		{"undefinesource", "--live --persistent --undefinesource"},
	} {
		t.Run(opt.name, func(t *testing.T) {
			t.Parallel()
			name := "ps" + opt.name[:2]
			a, b, serial := twoHosts(t, name, GuestOptions{})
			from, to := a, b
			for _, mode := range modes {
				for _, paused := range []bool{false, true} {
					step := mode.name + "/running"
					if paused {
						step = mode.name + "/paused"
						MustVirsh(t, from.URI(), "suspend", name)
					}
					// A host that still holds the definition keeps it.
					toDefines := strings.Contains(MustVirsh(t, to.URI(), "list", "--all", "--name"), name)
					before, _ := LastTick(serial)
					args := append([]string{"-c", from.URI(), "migrate"}, strings.Fields(opt.flags+" "+mode.flags)...)
					if r := run(t, 2*time.Minute, "virsh", append(args, name, to.URI())...); r.Err != nil {
						t.Fatalf("%s: %s", step, r)
					}
					st := domstate(t, to, name)
					if paused && st != "paused (user)" {
						t.Fatalf("%s: destination %q, want paused (user)", step, st)
					}
					if !paused && !strings.HasPrefix(st, "running") {
						t.Fatalf("%s: destination %q, want running", step, st)
					}
					if r := Virsh(t, from.URI(), "domstate", name); r.Err == nil && !strings.HasPrefix(strings.TrimSpace(r.Stdout), "shut off") {
						t.Fatalf("%s: source still %q", step, strings.TrimSpace(r.Stdout))
					}
					info := MustVirsh(t, to.URI(), "dominfo", name)
					if (toDefines || strings.Contains(opt.flags, "--persistent")) != strings.Contains(info, "Persistent:     yes") {
						t.Fatalf("%s: destination persistence with %q:\n%s", step, opt.flags, info)
					}
					listed := strings.Contains(MustVirsh(t, from.URI(), "list", "--all", "--name"), name)
					if strings.Contains(opt.flags, "--undefinesource") && listed {
						t.Fatalf("%s: --undefinesource left the definition on the source", step)
					}
					if paused {
						// Nothing ran while paused; resumed, the same boot ticks on.
						if last, _ := LastTick(serial); last.N > before.N+1 {
							t.Fatalf("%s: guest ticked from %d to %d while paused", step, before.N, last.N)
						}
						MustVirsh(t, to.URI(), "resume", name)
					}
					after := WaitTicks(t, serial, before.N+2, 60*time.Second)
					if after.BootID != before.BootID {
						t.Fatalf("%s: guest rebooted: %s -> %s", step, before.BootID, after.BootID)
					}
					from, to = to, from
				}
			}
			MustVirsh(t, from.URI(), "destroy", name)
		})
	}
}
