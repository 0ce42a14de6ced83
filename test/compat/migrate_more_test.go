package compat_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/govirtd/govirtd/test/deps"
)

// TestMigrationEvents: what `virsh event --all --loop` sees on each host
// during a migration, as libvirtd reports it.
func TestMigrationEvents(t *testing.T) {
	t.Parallel()
	a, b, serial := twoHosts(t, "ev", GuestOptions{})
	watch := func(h *Host) *strings.Builder {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		t.Cleanup(cancel)
		cmd := exec.CommandContext(ctx, "virsh", "-c", h.URI(), "event", "--all", "--loop")
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return &out
	}
	evA, evB := watch(a), watch(b)
	time.Sleep(500 * time.Millisecond)
	before, _ := LastTick(serial)
	if r := run(t, 2*time.Minute, "virsh", "-c", a.URI(), "migrate", "--live", "ev", b.URI()); r.Err != nil {
		t.Fatal(r)
	}
	checkMoved(t, a, b, "ev", serial, before)
	want := map[*Host][]string{
		a: {"event 'lifecycle' for domain 'ev': Suspended Migrated", "event 'lifecycle' for domain 'ev': Stopped Migrated", "event 'job-completed' for domain 'ev'"},
		b: {"event 'lifecycle' for domain 'ev': Started Migrated", "event 'lifecycle' for domain 'ev': Resumed Migrated"},
	}
	out := map[*Host]*strings.Builder{a: evA, b: evB}
	deadline := time.Now().Add(10 * time.Second)
	for h, ws := range want {
		for _, w := range ws {
			for !strings.Contains(out[h].String(), w) && time.Now().Before(deadline) {
				time.Sleep(100 * time.Millisecond)
			}
			if !strings.Contains(out[h].String(), w) {
				t.Errorf("%s's events lack %q:\n%s", h.Name, w, out[h].String())
			}
		}
	}
	if strings.Contains(evB.String(), "job-completed") {
		t.Errorf("job-completed on the destination (libvirt sends it on the source only):\n%s", evB.String())
	}
}

// TestMigrateClientDisconnects: the client (virsh) is killed in the middle
// of a managed migration; the source keeps the guest running and the
// destination drops its copy.
func TestMigrateClientDisconnects(t *testing.T) {
	t.Parallel()
	a, b, serial := twoHosts(t, "cd", GuestOptions{DirtyMB: 32, DirtyRate: 8})
	cmd := exec.Command("virsh", "-c", a.URI(), "migrate", "--live", "--bandwidth", "1", "cd", b.URI())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitMigrating(t, a, "cd")
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if strings.HasPrefix(stateOf(t, a, "cd"), "running") && len(b.QEMUPids()) == 0 && stateOf(t, b, "cd") == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the client went away: source %q, destination %q (QEMUs %v)", stateOf(t, a, "cd"), stateOf(t, b, "cd"), b.QEMUPids())
		}
		time.Sleep(300 * time.Millisecond)
	}
	before, _ := LastTick(serial)
	WaitTicks(t, serial, before.N+2, 30*time.Second)
	// And the domain can migrate again: nothing is left locked.
	if r := run(t, 2*time.Minute, "virsh", "-c", a.URI(), "migrate", "--live", "cd", b.URI()); r.Err != nil {
		t.Fatalf("migration after an abandoned one: %s", r)
	}
}

// waitMigrating waits until domjobinfo shows a running migration.
func waitMigrating(t *testing.T, h *Host, name string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ji := Virsh(t, h.URI(), "domjobinfo", name)
		if strings.Contains(ji.Stdout, "Unbounded") && strings.Contains(ji.Stdout, "Data processed") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no migration of %s showed up in domjobinfo: %s", name, ji)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestMigrateConcurrency: a second migration of a domain being migrated is
// refused with libvirt's lock timeout; another domain migrates meanwhile.
func TestMigrateConcurrency(t *testing.T) {
	t.Parallel()
	a, b, _ := twoHosts(t, "c1", GuestOptions{DirtyMB: 32, DirtyRate: 8})
	serial2 := filepath.Join(a.Dir, "c2.serial")
	defineGuest(t, a, GuestOptions{Name: "c2", Serial: serial2})
	MustVirsh(t, a.URI(), "start", "c2")
	WaitTicks(t, serial2, 1, 60*time.Second)

	slow := exec.Command("virsh", "-c", a.URI(), "migrate", "--live", "--bandwidth", "1", "c1", b.URI())
	var slowOut strings.Builder
	slow.Stdout, slow.Stderr = &slowOut, &slowOut
	if err := slow.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { slow.Process.Kill(); slow.Wait() })
	waitMigrating(t, a, "c1")

	// Another domain is not held up.
	if r := run(t, 2*time.Minute, "virsh", "-c", a.URI(), "migrate", "--live", "c2", b.URI()); r.Err != nil {
		t.Fatalf("migrating another domain during a migration: %s", r)
	}
	// The same domain is.
	r := run(t, 2*time.Minute, "virsh", "-c", a.URI(), "migrate", "--live", "c1", b.URI())
	if r.Err == nil || !strings.Contains(r.Stderr, "cannot acquire state change lock") {
		t.Fatalf("second migration of a migrating domain: %s", r)
	}
	MustVirsh(t, a.URI(), "domjobabort", "c1")
	slow.Wait()
	if !strings.HasPrefix(stateOf(t, a, "c1"), "running") {
		t.Fatalf("c1 after abort: %q", stateOf(t, a, "c1"))
	}
}

// TestMigrateOptions: same-host refusal, the disk safety check and
// --unsafe, --xml with an ABI check, --migrateuri.
func TestMigrateOptions(t *testing.T) {
	t.Parallel()
	deps.Require(t, "qemu-img")
	a := StartHost(t, HostOptions{Name: "opt-a"})
	b := StartHost(t, HostOptions{Name: "opt-b"})

	// A guest with a qcow2 disk on this machine's local filesystem: both
	// hosts see the same path, but libvirt only trusts shared filesystems.
	// Outside both hosts' directories: QEMUPids finds a host's QEMUs by
	// the paths in their command lines.
	disk := filepath.Join(t.TempDir(), "disk.qcow2")
	if r := run(t, 30*time.Second, "qemu-img", "create", "-f", "qcow2", disk, "16M"); r.Err != nil {
		t.Fatal(r)
	}
	serial := filepath.Join(a.Dir, "op.serial")
	xml := GuestXML(t, GuestOptions{Name: "op", Serial: serial})
	xml = strings.Replace(xml, "<devices>", "<devices>\n    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='"+disk+"'/><target dev='vda' bus='virtio'/></disk>", 1)
	xmlPath := filepath.Join(a.Dir, "op.xml")
	os.WriteFile(xmlPath, []byte(xml), 0o644)
	MustVirsh(t, a.URI(), "define", xmlPath)
	MustVirsh(t, a.URI(), "start", "op")
	before := WaitTicks(t, serial, 1, 60*time.Second)

	r := Virsh(t, a.URI(), "migrate", "--live", "--unsafe", "op", a.URI())
	if r.Err == nil || !strings.Contains(r.Stderr, "internal error: Attempt to migrate guest to the same host "+a.UUID) {
		t.Errorf("migration to the same host: %s", r)
	}
	r = Virsh(t, a.URI(), "migrate", "--live", "op", b.URI())
	if r.Err == nil || !strings.Contains(r.Stderr, "Unsafe migration: Migration without shared storage is unsafe") {
		t.Errorf("migration with a disk on local storage: %s", r)
	}

	// --xml: the destination XML may change what the guest cannot see...
	mig := MustVirsh(t, a.URI(), "dumpxml", "--migratable", "op")
	bad := strings.Replace(mig, "<memory unit='KiB'>131072</memory>", "<memory unit='KiB'>262144</memory>", 1)
	badPath := filepath.Join(a.Dir, "bad.xml")
	os.WriteFile(badPath, []byte(bad), 0o644)
	r = Virsh(t, a.URI(), "migrate", "--live", "--unsafe", "--xml", badPath, "op", b.URI())
	if r.Err == nil || !strings.Contains(r.Stderr, "Target domain max memory") {
		t.Errorf("--xml changing the memory size: %s", r)
	}
	good := strings.Replace(mig, "<name>op</name>", "<name>op</name>\n  <description>moved with --xml</description>", 1)
	goodPath := filepath.Join(a.Dir, "good.xml")
	os.WriteFile(goodPath, []byte(good), 0o644)

	// ...and --migrateuri picks the stream's address and port.
	port := freePort(t, b.Addr)
	uri := fmt.Sprintf("tcp:%s:%d", b.Addr, port)
	r = run(t, 2*time.Minute, "virsh", "-c", a.URI(), "migrate", "--live", "--unsafe", "--xml", goodPath, "--migrateuri", uri, "op", b.URI())
	if r.Err != nil {
		t.Fatalf("--unsafe --xml --migrateuri: %s", r)
	}
	checkMoved(t, a, b, "op", serial, before)
	if x := MustVirsh(t, b.URI(), "dumpxml", "op"); !strings.Contains(x, "moved with --xml") {
		t.Errorf("destination did not take the --xml definition:\n%s", x)
	}
	MustVirsh(t, b.URI(), "destroy", "op")
}

// TestMigrateUnixURIsAndControls: qemu+unix:// destinations (managed and
// p2p), the migration controls during a running migration
// (migrate-setspeed, migrate-setmaxdowntime/getmaxdowntime), and the
// --auto-converge, --abort-on-error and --listen-address options.
func TestMigrateUnixURIsAndControls(t *testing.T) {
	t.Parallel()
	a, b, serial := twoHosts(t, "ux", GuestOptions{DirtyMB: 16, DirtyRate: 4})

	// Managed over unix sockets on both ends, with options.
	before, _ := LastTick(serial)
	r := run(t, 2*time.Minute, "virsh", "-c", a.UnixURI(), "migrate", "--live", "--auto-converge", "--abort-on-error",
		"--listen-address", b.Addr, "ux", b.UnixURI())
	if r.Err != nil {
		t.Fatalf("managed migration to a qemu+unix URI: %s", r)
	}
	mid := checkMoved(t, a, b, "ux", serial, before)

	// p2p back over a unix URI, slowed down, and tuned while it runs.
	p2p := exec.Command("virsh", "-c", b.URI(), "migrate", "--live", "--p2p", "--bandwidth", "1", "ux", a.UnixURI())
	var out strings.Builder
	p2p.Stdout, p2p.Stderr = &out, &out
	if err := p2p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p2p.Process.Kill(); p2p.Wait() })
	waitMigrating(t, b, "ux")
	MustVirsh(t, b.URI(), "migrate-setmaxdowntime", "ux", "400")
	if got := strings.TrimSpace(MustVirsh(t, b.URI(), "migrate-getmaxdowntime", "ux")); got != "400" {
		t.Errorf("migrate-getmaxdowntime = %q, want 400", got)
	}
	// Lift the limit: the migration then completes on its own.
	MustVirsh(t, b.URI(), "migrate-setspeed", "ux", "0")
	done := make(chan error, 1)
	go func() { done <- p2p.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("p2p migration over a qemu+unix URI: %v\n%s", err, out.String())
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("p2p migration did not finish after migrate-setspeed 0:\n%s", out.String())
	}
	checkMoved(t, b, a, "ux", serial, mid)
	MustVirsh(t, a.URI(), "destroy", "ux")
}

// TestMigrateCompressionAndParallel: --compressed (xbzrle), --comp-methods
// mt with its tuning, and --parallel --parallel-connections (multifd),
// managed and peer-to-peer, with a guest rewriting memory: each one
// arrives the same boot with its memory intact. The source's completed
// job shows xbzrle's cache statistics; bad tuning gets libvirt's error.
func TestMigrateCompressionAndParallel(t *testing.T) {
	t.Parallel()
	a, b, serial := twoHosts(t, "cp", GuestOptions{DirtyMB: 16, DirtyRate: 8})
	from, to := a, b
	for _, args := range [][]string{
		{"--compressed"},
		{"--compressed", "--comp-methods", "mt", "--comp-mt-level", "1", "--comp-mt-threads", "2", "--comp-mt-dthreads", "2", "--p2p"},
		{"--parallel", "--parallel-connections", "3"},
		{"--parallel", "--p2p"},
		{"--compressed", "--comp-methods", "xbzrle", "--comp-xbzrle-cache", "8388608", "--parallel"},
	} {
		before, _ := LastTick(serial)
		argv := append([]string{"-c", from.URI(), "migrate", "--live"}, args...)
		if r := run(t, 3*time.Minute, "virsh", append(argv, "cp", to.URI())...); r.Err != nil {
			t.Fatalf("migrate %v: %s", args, r)
		}
		checkMoved(t, from, to, "cp", serial, before)
		if args[0] == "--compressed" && len(args) == 1 {
			if ji := MustVirsh(t, from.URI(), "domjobinfo", "--completed", "cp"); !strings.Contains(ji, "Compression cache:") {
				t.Errorf("domjobinfo --completed after --compressed has no xbzrle statistics:\n%s", ji)
			}
		}
		from, to = to, from
	}
	r := Virsh(t, from.URI(), "migrate", "--live", "--comp-methods", "mt", "--comp-xbzrle-cache", "8388608", "cp", to.URI())
	if r.Err == nil || !strings.Contains(r.Stderr, "Turn xbzrle compression on to tune it") {
		t.Errorf("xbzrle cache without xbzrle: %s", r)
	}
	r = Virsh(t, from.URI(), "migrate", "--live", "--parallel-connections", "2", "cp", to.URI())
	if r.Err == nil || !strings.Contains(r.Stderr, "Turn parallel migration on to tune it") {
		t.Errorf("connections without --parallel: %s", r)
	}
	MustVirsh(t, from.URI(), "destroy", "cp")
}
