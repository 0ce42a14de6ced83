package compat_test

import (
	"strings"
	"testing"
	"time"
)

// TestMigrateTunnelled: virsh migrate --live --p2p --tunnelled A→B and
// back: the migration data rides the daemons' RPC connection, and the
// guest's counter carries on.
func TestMigrateTunnelled(t *testing.T) {
	t.Parallel()
	a, b, serial := twoHosts(t, "tn", GuestOptions{DirtyMB: 16, DirtyRate: 4})

	before, _ := LastTick(serial)
	r := run(t, 2*time.Minute, "virsh", "-c", a.URI(), "migrate", "--live", "--p2p", "--tunnelled", "tn", b.URI())
	if r.Err != nil {
		t.Fatalf("tunnelled migration: %s", r)
	}
	mid := checkMoved(t, a, b, "tn", serial, before)
	// The data went through the RPC connection: the destination was
	// prepared for a tunnel, not a port, and took every stream message.
	if log := readFile(t, b.LogPath); !strings.Contains(log, "DOMAIN_MIGRATE_PREPARE_TUNNEL3_PARAMS") ||
		strings.Contains(log, "proc=DOMAIN_MIGRATE_PREPARE3_PARAMS") || strings.Contains(log, "unknown stream") {
		t.Errorf("destination log does not show a clean tunnelled Prepare:\n%s", tail(log, 40))
	}
	if st := domstate(t, a, "tn"); st != "shut off (migrated)" {
		t.Errorf("source after migration: %q", st)
	}
	if ji := MustVirsh(t, a.URI(), "domjobinfo", "--completed", "tn"); !strings.Contains(ji, "Job type:         Completed") {
		t.Errorf("domjobinfo --completed on the source:\n%s", ji)
	}

	r = run(t, 2*time.Minute, "virsh", "-c", b.URI(), "migrate", "--live", "--p2p", "--tunnelled", "tn", a.URI())
	if r.Err != nil {
		t.Fatalf("tunnelled migration back: %s", r)
	}
	checkMoved(t, b, a, "tn", serial, mid)
	if out := MustVirsh(t, b.URI(), "list", "--all", "--name"); strings.Contains(out, "tn") {
		t.Errorf("transient copy still listed on %s after leaving:\n%s", b.Name, out)
	}
	MustVirsh(t, a.URI(), "destroy", "tn")
}

// TestMigrateTunnelledAbort: domjobabort during a slowed tunnelled
// migration ends it with libvirt's error; the guest keeps running on the
// source and the destination drops its copy.
func TestMigrateTunnelledAbort(t *testing.T) {
	t.Parallel()
	a, b, serial := twoHosts(t, "ta", GuestOptions{DirtyMB: 32, DirtyRate: 8})
	done := make(chan Result, 1)
	go func() {
		done <- run(t, 3*time.Minute, "virsh", "-c", a.URI(), "migrate", "--live", "--p2p", "--tunnelled", "--bandwidth", "1", "ta", b.URI())
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ji := Virsh(t, a.URI(), "domjobinfo", "ta")
		if strings.Contains(ji.Stdout, "Unbounded") && strings.Contains(ji.Stdout, "Data processed") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("migration never showed up in domjobinfo: %s", ji)
		}
		time.Sleep(200 * time.Millisecond)
	}
	MustVirsh(t, a.URI(), "domjobabort", "ta")
	r := <-done
	if r.Err == nil || !strings.Contains(r.Stderr, "operation aborted: job 'migration out' canceled by client") {
		t.Fatalf("aborted migration: %s", r)
	}
	if st := domstate(t, a, "ta"); !strings.HasPrefix(st, "running") {
		t.Errorf("source after abort: %q", st)
	}
	if out := MustVirsh(t, b.URI(), "list", "--all", "--name"); strings.Contains(out, "ta") {
		t.Errorf("destination kept a copy after abort:\n%s", out)
	}
	before, _ := LastTick(serial)
	WaitTicks(t, serial, before.N+2, 30*time.Second)
	MustVirsh(t, a.URI(), "destroy", "ta")
}
