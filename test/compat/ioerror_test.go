package compat_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govirtd/govirtd/test/deps"
)

// smallFS mounts a tmpfs of the given size (e.g. "1m") on a new directory,
// where a disk image runs out of room; it is unmounted at the end.
func smallFS(t *testing.T, size string) string {
	t.Helper()
	deps.Require(t, "mount", "umount")
	dir := t.TempDir()
	if r := run(t, 10*time.Second, "mount", "-t", "tmpfs", "-o", "size="+size, "govirtd-test", dir); r.Err != nil {
		t.Fatalf("mount a %s tmpfs: %s", size, r)
	}
	t.Cleanup(func() { run(t, 10*time.Second, "umount", "-l", dir) })
	return dir
}

func resizeFS(t *testing.T, dir, size string) {
	t.Helper()
	if r := run(t, 10*time.Second, "mount", "-o", "remount,size="+size, dir); r.Err != nil {
		t.Fatalf("remount %s: %s", dir, r)
	}
}

// TestDiskIOError: a guest writing to a disk (error_policy='stop') whose
// image sits on a full filesystem is paused by QEMU, and govirtd reports
// it as libvirt does: state paused (I/O error), the io-error and
// io-error-reason events and a suspended (I/O error) one, domblkerror's
// "no space". --abort-on-error then refuses to migrate a guest so paused,
// and cancels a migration during which the disk fills, the guest left on
// its host (resumed, as libvirt resumes a guest that ran before, and so
// paused again by the retried write); a guest that was paused before a
// failed migration is not resumed by it. With room on the disk the guest
// resumes where it stopped and migrates with --abort-on-error, intact.
func TestDiskIOError(t *testing.T) {
	t.Parallel()
	deps.Require(t, "virsh", "qemu-system-x86_64")
	a := StartHost(t, HostOptions{Name: "ioe-a"})
	b := StartHost(t, HostOptions{Name: "ioe-b"})
	fs := smallFS(t, "1m")
	img := filepath.Join(fs, "ioe.raw")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 64<<20); err != nil {
		t.Fatal(err)
	}
	serial := filepath.Join(a.Dir, "ioe.serial")
	disk := fmt.Sprintf(`<disk type='file' device='disk'>
      <driver name='qemu' type='raw' error_policy='stop'/>
      <source file='%s'/>
      <target dev='vda' bus='virtio'/>
    </disk>
`, img)
	xml := strings.Replace(GuestXML(t, GuestOptions{Name: "ioe", Serial: serial}), "<devices>\n", "<devices>\n    "+disk, 1)
	// 16 blocks of 4 KiB a tick, 320 KiB/s: 1 MiB is full in about 3 s.
	xml = strings.Replace(xml, "tick_ms=200", "tick_ms=200 disk_blocks=8192 disk_rate=16", 1)
	p := filepath.Join(a.Dir, "ioe.xml")
	if err := os.WriteFile(p, []byte(xml), 0o644); err != nil {
		t.Fatal(err)
	}
	events := watchEvents(t, a.URI())
	MustVirsh(t, a.URI(), "define", p)
	MustVirsh(t, a.URI(), "start", "ioe")

	waitState(t, a, "ioe", "paused (I/O error)", 90*time.Second)
	waitOutput(t, events, fmt.Sprintf("event 'io-error' for domain 'ioe': %s (virtio-disk0) pause", img), 10*time.Second)
	waitOutput(t, events, fmt.Sprintf("event 'io-error-reason' for domain 'ioe': %s (virtio-disk0) pause due to enospc", img), 10*time.Second)
	waitOutput(t, events, "event 'lifecycle' for domain 'ioe': Suspended I/O Error", 10*time.Second)
	if out := MustVirsh(t, a.URI(), "domblkerror", "ioe"); !strings.Contains(out, "vda: no space") {
		t.Fatalf("domblkerror of a disk out of room: %q", out)
	}

	// Refused at once while the guest is paused by the error, and not
	// resumed by the failure: it was not running.
	migrate := func(extra ...string) []string {
		// --unsafe: the image is on a local filesystem both hosts see
		// (one machine), not on one libvirt knows to be shared.
		argv := append([]string{"-c", a.URI(), "migrate", "--live", "--unsafe", "--abort-on-error"}, extra...)
		return append(argv, "ioe", b.URI())
	}
	if r := run(t, time.Minute, "virsh", migrate()...); r.Err == nil || !strings.Contains(r.Stderr, "operation failed: migration out job: failed due to I/O error") {
		t.Fatalf("--abort-on-error migration of a guest paused by an I/O error: %s", r)
	}
	if st := domstate(t, a, "ioe"); st != "paused (I/O error)" {
		t.Fatalf("after the refused migration: %q", st)
	}
	if r := Virsh(t, b.URI(), "domstate", "ioe"); r.Err == nil {
		t.Fatalf("the destination kept the guest of a failed migration: %s", r)
	}

	// Room for about 3 s more: the disk fills during a slow migration,
	// which --abort-on-error cancels.
	resizeFS(t, fs, "2m")
	before, _ := LastTick(serial)
	MustVirsh(t, a.URI(), "resume", "ioe")
	WaitTicks(t, serial, before.N+2, 30*time.Second)
	// virsh shows the source's reason, or what it did to the destination
	// (its QEMU lost the stream) when that came first, as with libvirtd:
	// the source's own answer is in its log.
	if r := run(t, 2*time.Minute, "virsh", migrate("--bandwidth", "1")...); r.Err == nil {
		t.Fatalf("--abort-on-error migration during which the disk fills succeeded: %s", r)
	}
	log, _ := os.ReadFile(a.LogPath)
	if n := strings.Count(string(log), `err="operation failed: migration out job: failed due to I/O error"`); n != 2 {
		t.Fatalf("the source answered \"failed due to I/O error\" %d times, want 2 (the refusal and the abort)", n)
	}
	waitState(t, a, "ioe", "paused (I/O error)", 30*time.Second)
	if r := Virsh(t, b.URI(), "domstate", "ioe"); r.Err == nil {
		t.Fatalf("the destination kept the guest of an aborted migration: %s", r)
	}

	// Room enough: it resumes where it stopped, and moves.
	resizeFS(t, fs, "128m")
	before, _ = LastTick(serial)
	MustVirsh(t, a.URI(), "resume", "ioe")
	WaitTicks(t, serial, before.N+3, 30*time.Second)
	// (domblkerror still says "no space" here, with libvirt too: QEMU
	// 7.2's cont resets the io-status of named drives only, and a
	// -blockdev disk's is not.)
	before, _ = LastTick(serial)
	if r := run(t, 2*time.Minute, "virsh", migrate()...); r.Err != nil {
		t.Fatal(r)
	}
	checkMoved(t, a, b, "ioe", serial, before)
	if c := DiskChecks(serial); len(c) == 0 || c[len(c)-1].Mism != 0 {
		t.Fatalf("the guest's disk checks: %+v", c)
	}
}
