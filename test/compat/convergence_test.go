package compat_test

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/govirtd/govirtd/test/deps"
)

// The convergence guard (govirtd's own, off by default): a migration
// whose remaining data stops shrinking is escalated in the declared order
// — here, with neither --auto-converge nor --postcopy, straight to abort;
// with --postcopy, to the switch.

var guardReason = regexp.MustCompile(`operation aborted: migration out job: aborted by govirtd's convergence guard: remaining [0-9.]+ MiB has not shrunk by 5% for [5-9]s over \d+ iterations; the guest dirties [0-9.]+ MiB/s, [0-9.]+ MiB/s is sent`)

// TestConvergenceGuardAborts: qemu.conf's migration_convergence_stall on
// the source; a guest that cannot converge is aborted with the reason in
// virsh's error, in a job-completed event and in the daemon log, and
// keeps running on the source.
func TestConvergenceGuardAborts(t *testing.T) {
	t.Parallel()
	deps.Require(t, "virsh", "qemu-system-x86_64")
	a := StartHost(t, HostOptions{Name: "cg-a", QemuConf: "migration_convergence_stall = 5\n"})
	b := StartHost(t, HostOptions{Name: "cg-b"})
	serial := filepath.Join(a.Dir, "guest.serial")
	o := nonConverging
	o.Name, o.Serial = "cg", serial
	defineGuest(t, a, o)
	MustVirsh(t, a.URI(), "start", "cg")
	WaitTicks(t, serial, 2, 60*time.Second)
	ev := watchEvents(t, a.URI())

	start := time.Now()
	r := run(t, 3*time.Minute, "virsh", "-c", a.URI(), "migrate", "--live", "--bandwidth", "8", "cg", b.URI())
	took := time.Since(start)
	if r.Err == nil {
		t.Fatalf("a migration that cannot converge completed: %s", r)
	}
	if !guardReason.MatchString(r.Stderr) {
		t.Errorf("virsh's error does not give the guard's reason: %s", r.Stderr)
	}
	t.Logf("aborted after %s: %s", took.Round(time.Second), strings.TrimSpace(r.Stderr))
	waitOutput(t, ev, "event 'job-completed' for domain 'cg'", 10*time.Second)
	waitOutput(t, ev, "govirtd.convergence_guard: abort: remaining", 10*time.Second)
	if !strings.Contains(readFile(t, filepath.Join(a.Dir, "daemon.log")), `msg="convergence guard" domain=cg action=abort`) {
		t.Error("no convergence guard decision in the daemon log")
	}
	if st := domstate(t, a, "cg"); !strings.HasPrefix(st, "running") {
		t.Fatalf("source after the guard's abort: %s", st)
	}
	before, _ := LastTick(serial)
	if after := WaitTicks(t, serial, before.N+3, 30*time.Second); after.BootID != before.BootID || after.Mism != 0 {
		t.Fatalf("guest after the abort: %+v (was %+v)", after, before)
	}
	if r := Virsh(t, b.URI(), "domstate", "cg"); r.Err == nil {
		t.Fatalf("the destination still has the guest: %s", r)
	}
}

// TestConvergenceGuardSwitchesToPostcopy: no guard configured, the stall
// given per migration as govirtd.convergence_stall (python-libvirt's
// migrate3); with VIR_MIGRATE_POSTCOPY the guard switches to post-copy and
// the guest gets across; the decision is in the completed job's
// statistics.
func TestConvergenceGuardSwitchesToPostcopy(t *testing.T) {
	t.Parallel()
	a, b, serial := twoHosts(t, "cs", nonConverging)
	before, _ := LastTick(serial)
	r := Python(t, `
import sys, libvirt
src = libvirt.open(sys.argv[1]); dst = libvirt.open(sys.argv[2])
dom = src.lookupByName("cs")
flags = libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_POSTCOPY
dom.migrate3(dst, {"bandwidth": 8, "govirtd.convergence_stall": 5}, flags)
st = dom.jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
print("GUARD", st.get("govirtd.convergence_guard", ""))
`, a.URI(), b.URI())
	if r.Err != nil {
		t.Fatalf("migrate3: %s", r)
	}
	if !strings.Contains(r.Stdout, "GUARD postcopy: remaining") {
		t.Fatalf("completed job statistics lack the guard's post-copy decision: %s", r.Stdout)
	}
	checkMoved(t, a, b, "cs", serial, before)
}
