package compat_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govirtd/govirtd/test/deps"
)

// The failure matrix: a fault injected at every migration step, on the
// host that runs it, with every action. Whatever happens, once the hosts
// have settled the guest runs exactly once (or nowhere, when the fault
// killed its only copy) and its definition is intact on the source.

type faultCase struct {
	point  string // begin, prepare-end, ...
	action string // error, kill-qemu, exit-daemon
	onDest bool   // the fault is configured on the destination
	// want is where the guest must run afterwards: "a", "b", or "none"
	// (kill-qemu of the only live copy).
	want string
}

func faultMatrix() []faultCase {
	var cases []faultCase
	add := func(point, action string, onDest bool, want string) {
		cases = append(cases, faultCase{point, action, onDest, want})
	}
	// error: the step fails.
	add("begin", "error", false, "a")
	add("begin-end", "error", false, "a")
	add("prepare", "error", true, "a")
	add("prepare-end", "error", true, "a")
	add("perform", "error", false, "a")
	add("perform-end", "error", false, "a")
	add("perform", "error", true, "a")
	add("finish", "error", true, "a")
	add("finish-end", "error", true, "b") // the destination already runs it
	add("confirm", "error", false, "b")
	add("confirm-end", "error", false, "b")
	// kill-qemu: this host's QEMU of the domain dies at that point.
	add("begin", "kill-qemu", false, "none")
	add("begin-end", "kill-qemu", false, "none")
	add("prepare", "kill-qemu", true, "b") // nothing runs there yet: no-op
	add("prepare-end", "kill-qemu", true, "a")
	add("perform", "kill-qemu", false, "none")
	add("perform-end", "kill-qemu", false, "b")
	add("perform", "kill-qemu", true, "a")
	add("finish", "kill-qemu", true, "a")
	add("finish-end", "kill-qemu", true, "none")
	add("confirm", "kill-qemu", false, "b")
	add("confirm-end", "kill-qemu", false, "b")
	// exit-daemon: the daemon crashes there, and is started again.
	add("begin", "exit-daemon", false, "a")
	add("begin-end", "exit-daemon", false, "a")
	add("prepare", "exit-daemon", true, "a")
	add("prepare-end", "exit-daemon", true, "a")
	add("perform", "exit-daemon", false, "a")
	add("perform-end", "exit-daemon", false, "a")
	add("perform", "exit-daemon", true, "a")
	add("finish", "exit-daemon", true, "a")
	add("finish-end", "exit-daemon", true, "b")
	add("confirm", "exit-daemon", false, "b")
	add("confirm-end", "exit-daemon", false, "b")
	return cases
}

func TestMigrationFaultMatrix(t *testing.T) {
	deps.Require(t, "virsh", "qemu-system-x86_64")
	for _, c := range faultMatrix() {
		side := "src"
		if c.onDest {
			side = "dst"
		}
		name := fmt.Sprintf("%s:%s@%s", c.point, c.action, side)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			runFaultCase(t, c)
		})
	}
}

func runFaultCase(t *testing.T, c faultCase) {
	fault := fmt.Sprintf("fault_injection = [ %q ]\n", c.point+":"+c.action)
	var aOpts, bOpts HostOptions
	if c.onDest {
		bOpts.Extra = fault
	} else {
		aOpts.Extra = fault
	}
	aOpts.Name, bOpts.Name = "fa", "fb"
	a := StartHost(t, aOpts)
	b := StartHost(t, bOpts)
	serial := filepath.Join(a.Dir, "guest.serial")
	defineGuest(t, a, GuestOptions{Name: "fg", Serial: serial})
	MustVirsh(t, a.URI(), "start", "fg")
	before := WaitTicks(t, serial, 1, 60*time.Second)

	r := run(t, 2*time.Minute, "virsh", "-c", a.URI(), "migrate", "--live", "fg", b.URI())
	t.Logf("virsh migrate: %v %s", r.Err, strings.TrimSpace(r.Stderr))

	// Crashed daemons come back, without the fault. The faulted one
	// exits at the fault: wait for that, or it may still look alive.
	if c.action == "exit-daemon" {
		faulted := a
		if c.onDest {
			faulted = b
		}
		if !faulted.WaitExit(30 * time.Second) {
			t.Fatalf("%s did not exit at the fault", faulted.Name)
		}
	}
	for _, h := range []*Host{a, b} {
		if !h.Alive() {
			h.RemoveFaults()
			h.Restart()
		}
	}

	// Settle: the hosts may still be finishing the job (a source asks the
	// destination whether it runs the guest before resuming).
	deadline := time.Now().Add(90 * time.Second)
	var where string
	for {
		aRun := strings.HasPrefix(stateOf(t, a, "fg"), "running")
		bRun := strings.HasPrefix(stateOf(t, b, "fg"), "running")
		if aRun && bRun {
			t.Fatalf("the guest runs on both hosts")
		}
		switch {
		case aRun:
			where = "a"
		case bRun:
			where = "b"
		default:
			where = "none"
		}
		if where == c.want && len(a.QEMUPids())+len(b.QEMUPids()) == map[bool]int{true: 0, false: 1}[where == "none"] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the fault the guest runs on %q (want %q); QEMUs: a=%v b=%v; states: a=%q b=%q",
				where, c.want, a.QEMUPids(), b.QEMUPids(), stateOf(t, a, "fg"), stateOf(t, b, "fg"))
		}
		time.Sleep(300 * time.Millisecond)
	}

	// The definition is intact on the source.
	if out := MustVirsh(t, a.URI(), "list", "--all", "--name"); !strings.Contains(out, "fg") {
		t.Fatalf("definition lost on the source:\n%s", out)
	}
	if where == "none" {
		return
	}
	// The guest that runs is the same one, still ticking, memory intact.
	after := WaitTicks(t, serial, before.N+2, 60*time.Second)
	if after.BootID != before.BootID || after.Mism != 0 {
		t.Fatalf("guest after the fault: boot %s (was %s), %d mismatches", after.BootID, before.BootID, after.Mism)
	}
}

// stateOf is the domain's state on a host, "" when the host does not
// have it.
func stateOf(t *testing.T, h *Host, name string) string {
	r := Virsh(t, h.URI(), "domstate", name)
	if r.Err != nil {
		return ""
	}
	return strings.TrimSpace(r.Stdout)
}

// TestFailedMigrationLeavesPausedGuestPaused: a guest the user paused
// before a migration that fails (here the destination's Finish, after the
// source QEMU sent everything) is left paused on the source, not resumed:
// libvirt resumes only a guest that was running when the migration began.
func TestFailedMigrationLeavesPausedGuestPaused(t *testing.T) {
	t.Parallel()
	deps.Require(t, "virsh", "qemu-system-x86_64")
	a := StartHost(t, HostOptions{Name: "fp-a"})
	b := StartHost(t, HostOptions{Name: "fp-b", Extra: fmt.Sprintf("fault_injection = [ %q ]\n", "finish:error")})
	serial := filepath.Join(a.Dir, "fp.serial")
	defineGuest(t, a, GuestOptions{Name: "fp", Serial: serial})
	MustVirsh(t, a.URI(), "start", "fp")
	WaitTicks(t, serial, 2, 60*time.Second)
	MustVirsh(t, a.URI(), "suspend", "fp")
	if r := run(t, 2*time.Minute, "virsh", "-c", a.URI(), "migrate", "--live", "fp", b.URI()); r.Err == nil {
		t.Fatalf("migration with a failing Finish succeeded: %s", r)
	}
	if st := domstate(t, a, "fp"); st != "paused (user)" {
		t.Fatalf("the paused guest after the failed migration: %q, want paused (user)", st)
	}
	before, _ := LastTick(serial)
	time.Sleep(2 * time.Second)
	if now, _ := LastTick(serial); now.N != before.N {
		t.Fatalf("the paused guest ticked on after the failed migration: %d -> %d", before.N, now.N)
	}
	MustVirsh(t, a.URI(), "resume", "fp")
	WaitTicks(t, serial, before.N+2, 30*time.Second)
}
