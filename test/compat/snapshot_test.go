package compat_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/govirtd/govirtd/test/deps"
)

// requireContains stops the test unless out holds every part.
func requireContains(t *testing.T, what, out string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(out, p) {
			t.Fatalf("%s lacks %q:\n%s", what, p, out)
		}
	}
}

// virshFails runs virsh, which must fail with stderr holding msg.
func virshFails(t *testing.T, uri, msg string, args ...string) {
	t.Helper()
	r := Virsh(t, uri, args...)
	if r.Err == nil || !strings.Contains(r.Stderr, msg) {
		t.Fatalf("virsh %s: want an error with %q, got %s", strings.Join(args, " "), msg, r)
	}
}

// qemuImgSnapshots lists the internal snapshots of an image.
func qemuImgSnapshots(t *testing.T, img string) string {
	t.Helper()
	r := run(t, time.Minute, "qemu-img", "snapshot", "-l", "-U", img)
	if r.Err != nil {
		t.Fatalf("qemu-img snapshot -l: %s", r)
	}
	return r.Stdout
}

func regexpMatch(pattern, s string) bool { return regexp.MustCompile(pattern).MatchString(s) }

// ticksAfter waits for n ticks logged after the first skip ones.
func ticksAfter(t *testing.T, serial string, skip, n int, timeout time.Duration) []Tick {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ts := Ticks(serial)
		if len(ts) >= skip+n {
			return ts[skip:]
		}
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %d ticks after the first %d within %v (have %d)", n, skip, timeout, len(ts))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestSnapshotInternalRunning: a full internal snapshot of a running
// guest keeps it running; reverting to it puts the guest's memory back
// (its tick counter returns to the snapshot's, same boot) and the guest
// runs on. The snapshot tree, its queries and deletion, the metadata
// across a daemon restart, and undefine with snapshots.
func TestSnapshotInternalRunning(t *testing.T) {
	deps.Require(t, "virsh", "qemu-system-x86_64", "qemu-img")
	t.Parallel()
	h := StartHost(t, HostOptions{Name: "snapint"})
	uri := h.URI()
	serial, img, _, _ := diskGuest(t, h, h, "si", "qcow2", 0)
	WaitTicks(t, serial, 3, time.Minute)

	before, _ := LastTick(serial)
	MustVirsh(t, uri, "snapshot-create-as", "si", "s1", "--description", "first one")
	atSnap, _ := LastTick(serial)
	if st := domstate(t, h, "si"); !strings.HasPrefix(st, "running") {
		t.Fatalf("after the snapshot the guest is %s", st)
	}
	later := WaitTicks(t, serial, atSnap.N+8, time.Minute)
	MustVirsh(t, uri, "snapshot-create-as", "si", "s2")

	x := MustVirsh(t, uri, "snapshot-dumpxml", "si", "s1")
	requireContains(t, "snapshot-dumpxml s1", x, "<name>s1</name>", "<description>first one</description>", "<state>running</state>",
		"<creationTime>", "<memory snapshot='internal'/>", "<disk name='vda' snapshot='internal'/>", "<domain type='qemu'>", "<source file='"+img+"'/>",
		"</vcpu>\n    <resource>\n      <partition>/machine</partition>\n    </resource>\n    <os>")
	if strings.Contains(x, "<parent>") {
		t.Errorf("the first snapshot has a parent:\n%s", x)
	}
	requireContains(t, "snapshot-dumpxml s2", MustVirsh(t, uri, "snapshot-dumpxml", "si", "s2"), "<parent>\n    <name>s1</name>\n  </parent>")
	requireContains(t, "qemu-img snapshot -l", qemuImgSnapshots(t, img), "s1", "s2")
	if cur := strings.TrimSpace(MustVirsh(t, uri, "snapshot-current", "--name", "si")); cur != "s2" {
		t.Errorf("snapshot-current = %q, want s2", cur)
	}
	if p := strings.TrimSpace(MustVirsh(t, uri, "snapshot-parent", "si", "s2")); p != "s1" {
		t.Errorf("snapshot-parent s2 = %q", p)
	}
	requireContains(t, "snapshot-list --tree", MustVirsh(t, uri, "snapshot-list", "si", "--tree"), "s1\n  |\n  +- s2")
	requireContains(t, "snapshot-list --parent", MustVirsh(t, uri, "snapshot-list", "si", "--parent"), "s2", "running", "s1")
	if roots := MustVirsh(t, uri, "snapshot-list", "si", "--roots", "--name"); strings.TrimSpace(roots) != "s1" {
		t.Errorf("snapshot-list --roots = %q", roots)
	}
	if leaves := MustVirsh(t, uri, "snapshot-list", "si", "--leaves", "--name"); strings.TrimSpace(leaves) != "s2" {
		t.Errorf("snapshot-list --leaves = %q", leaves)
	}
	info := MustVirsh(t, uri, "snapshot-info", "si", "s1")
	for _, want := range []string{`Name:\s+s1`, `Domain:\s+si`, `Current:\s+no`, `State:\s+running`, `Location:\s+internal`, `Parent:\s+-`, `Children:\s+1`, `Descendants:\s+1`, `Metadata:\s+yes`} {
		if !regexpMatch(want, info) {
			t.Errorf("snapshot-info s1 lacks %s:\n%s", want, info)
		}
	}

	// Revert to s1: the counter goes back, in the same boot, and goes on.
	logged := len(Ticks(serial))
	MustVirsh(t, uri, "snapshot-revert", "si", "s1")
	// Ticks printed while the revert was under way come first; then the
	// counter drops back to the snapshot's.
	var back *Tick
	deadline := time.Now().Add(time.Minute)
	for back == nil && time.Now().Before(deadline) {
		for _, tk := range ticksAfter(t, serial, logged, 1, time.Minute) {
			if tk.N <= atSnap.N+1 {
				tk := tk
				back = &tk
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if back == nil {
		t.Fatalf("after the revert the counter never went back to the snapshot's %d (it was %d before): %v", atSnap.N, later.N, Ticks(serial)[logged:])
	}
	if back.BootID != before.BootID || back.N < before.N {
		t.Fatalf("after the revert: %+v; at the snapshot: %d..%d in boot %s", *back, before.N, atSnap.N, before.BootID)
	}
	if tk := WaitTicks(t, serial, back.N+3, time.Minute); tk.BootID != before.BootID {
		t.Errorf("the guest does not run on after the revert in the same boot: %+v", tk)
	}
	if st := domstate(t, h, "si"); st != "running (from snapshot)" {
		t.Errorf("after the revert: %s", st)
	}
	if cur := strings.TrimSpace(MustVirsh(t, uri, "snapshot-current", "--name", "si")); cur != "s1" {
		t.Errorf("snapshot-current after the revert = %q, want s1", cur)
	}

	// Revert paused; virsh snapshot-current NAME (a redefinition) moves
	// the current snapshot.
	MustVirsh(t, uri, "snapshot-revert", "si", "s1", "--paused")
	if st := domstate(t, h, "si"); st != "paused (from snapshot)" {
		t.Errorf("after snapshot-revert --paused: %s", st)
	}
	MustVirsh(t, uri, "resume", "si")
	MustVirsh(t, uri, "snapshot-current", "si", "s2")
	if cur := strings.TrimSpace(MustVirsh(t, uri, "snapshot-current", "--name", "si")); cur != "s2" {
		t.Errorf("snapshot-current after setting s2 = %q", cur)
	}
	requireContains(t, "snapshot-dumpxml s2 after its redefinition", MustVirsh(t, uri, "snapshot-dumpxml", "si", "s2"), "<domain type='qemu'>", "<parent>")

	// Delete s2 (current): gone from the list and from the image, and
	// its parent is current again.
	MustVirsh(t, uri, "snapshot-delete", "si", "s2")
	if names := MustVirsh(t, uri, "snapshot-list", "si", "--name"); strings.TrimSpace(names) != "s1" {
		t.Errorf("after deleting s2: %q", names)
	}
	if l := qemuImgSnapshots(t, img); strings.Contains(l, "s2") || !strings.Contains(l, "s1") {
		t.Errorf("qemu-img snapshot -l after deleting s2:\n%s", l)
	}
	virshFails(t, uri, "Domain snapshot not found: no domain snapshot with matching name 'nope'", "snapshot-revert", "si", "nope")
	virshFails(t, uri, "Domain snapshot not found: no domain snapshot with matching name 'nope'", "snapshot-delete", "si", "nope")
	virshFails(t, uri, "invalid snapshot name 'a/b': name can't contain '/'", "snapshot-create-as", "si", "a/b")
	virshFails(t, h.ROURI(), "read only access prevents virDomainSnapshotCreateXML", "snapshot-create-as", "si", "ro")
	if names := MustVirsh(t, h.ROURI(), "snapshot-list", "si", "--name"); strings.TrimSpace(names) != "s1" {
		t.Errorf("snapshot-list on the read-only socket: %q", names)
	}

	// --halt stops the guest once its snapshot is taken.
	MustVirsh(t, uri, "snapshot-create-as", "si", "s9", "--halt")
	if st := domstate(t, h, "si"); st != "shut off (from snapshot)" {
		t.Errorf("after snapshot-create-as --halt: %s", st)
	}

	// The metadata survives a daemon restart.
	h.Restart()
	if names := strings.Join(lines(MustVirsh(t, uri, "snapshot-list", "si", "--name")), " "); names != "s1 s9" {
		t.Errorf("after a restart: %q", names)
	}
	if cur := strings.TrimSpace(MustVirsh(t, uri, "snapshot-current", "--name", "si")); cur != "s9" {
		t.Errorf("snapshot-current after a restart = %q", cur)
	}
	requireContains(t, "list --with-snapshot", MustVirsh(t, uri, "list", "--all", "--with-snapshot", "--name"), "si")

	// Undefine: refused while the snapshots exist, unless their metadata
	// goes too.
	virshFails(t, uri, "cannot delete inactive domain with 2 snapshots", "undefine", "si")
	MustVirsh(t, uri, "undefine", "si", "--snapshots-metadata")
	if _, err := os.Stat(filepath.Join(h.Dir, "state", "qemu", "snapshot", "si")); !os.IsNotExist(err) {
		t.Errorf("the snapshot metadata is still there after undefine: %v", err)
	}
}

// TestSnapshotShutoffInternal: an internal snapshot of a shut off domain
// is a qemu-img snapshot in its qcow2 disk; reverting to it puts the
// disk's data back. A raw disk refuses internal snapshots with libvirt's
// error.
func TestSnapshotShutoffInternal(t *testing.T) {
	deps.Require(t, "virsh", "qemu-system-x86_64", "qemu-img", "qemu-io")
	t.Parallel()
	h := StartHost(t, HostOptions{Name: "snapoff"})
	uri := h.URI()
	_, img, _, _ := diskGuest(t, h, h, "so", "qcow2", 0)
	MustVirsh(t, uri, "destroy", "so")

	// The image's first byte before and after: 0x11 at the snapshot, 0x22
	// written after it.
	writeByte := func(v string) {
		if r := run(t, time.Minute, "qemu-io", "-f", "qcow2", "-c", "write -P "+v+" 0 512", img); r.Err != nil {
			t.Fatalf("qemu-io write: %s", r)
		}
	}
	readsAs := func(v string) bool {
		r := run(t, time.Minute, "qemu-io", "-f", "qcow2", "-c", "read -P "+v+" 0 512", img)
		return r.Err == nil && !strings.Contains(r.Stdout, "Pattern verification failed")
	}
	writeByte("0x11")
	MustVirsh(t, uri, "snapshot-create-as", "so", "off1")
	requireContains(t, "qemu-img snapshot -l", qemuImgSnapshots(t, img), "off1")
	x := MustVirsh(t, uri, "snapshot-dumpxml", "so", "off1")
	requireContains(t, "snapshot-dumpxml", x, "<state>shutoff</state>", "<memory snapshot='no'/>", "<disk name='vda' snapshot='internal'/>")
	// A renamed domain keeps its snapshots.
	MustVirsh(t, uri, "domrename", "so", "so2")
	if n := strings.TrimSpace(MustVirsh(t, uri, "snapshot-list", "so2", "--name")); n != "off1" {
		t.Errorf("snapshot-list after domrename = %q", n)
	}
	MustVirsh(t, uri, "domrename", "so2", "so")
	writeByte("0x22")
	MustVirsh(t, uri, "snapshot-revert", "so", "off1")
	if !readsAs("0x11") {
		t.Fatal("after the revert the disk does not hold the snapshot's data")
	}
	if st := domstate(t, h, "so"); !strings.HasPrefix(st, "shut off") {
		t.Errorf("after reverting to a shut off snapshot: %s", st)
	}
	if n := strings.TrimSpace(MustVirsh(t, uri, "snapshot-list", "so", "--inactive", "--name")); n != "off1" {
		t.Errorf("snapshot-list --inactive = %q", n)
	}
	if n := strings.TrimSpace(MustVirsh(t, uri, "snapshot-list", "so", "--active", "--name")); n != "" {
		t.Errorf("snapshot-list --active = %q", n)
	}
	// Revert and run.
	MustVirsh(t, uri, "snapshot-revert", "so", "off1", "--running")
	if st := domstate(t, h, "so"); !strings.HasPrefix(st, "running") {
		t.Errorf("after snapshot-revert --running: %s", st)
	}
	virshFails(t, uri, "must respawn qemu to start inactive snapshot", "snapshot-revert", "so", "off1", "--running")
	MustVirsh(t, uri, "destroy", "so")
	// Children: off1 <- off2 <- off3, the last current; deleting off1's
	// children makes off1 current again.
	MustVirsh(t, uri, "snapshot-create-as", "so", "off2")
	MustVirsh(t, uri, "snapshot-create-as", "so", "off3")
	if n := MustVirsh(t, uri, "snapshot-list", "so", "--topological", "--name"); strings.Join(lines(n), " ") != "off1 off2 off3" {
		t.Errorf("snapshot-list --topological = %q", n)
	}
	if n := lines(MustVirsh(t, uri, "snapshot-list", "so", "--from", "off1", "--descendants", "--name")); len(n) != 2 {
		t.Errorf("descendants of off1: %q", n)
	}
	MustVirsh(t, uri, "snapshot-delete", "so", "off1", "--children-only")
	if n := strings.TrimSpace(MustVirsh(t, uri, "snapshot-list", "so", "--name")); n != "off1" {
		t.Errorf("after delete --children-only: %q", n)
	}
	if cur := strings.TrimSpace(MustVirsh(t, uri, "snapshot-current", "--name", "so")); cur != "off1" {
		t.Errorf("current after delete --children-only = %q", cur)
	}
	if l := qemuImgSnapshots(t, img); strings.Contains(l, "off2") || strings.Contains(l, "off3") {
		t.Errorf("the children are still in the image:\n%s", l)
	}
	MustVirsh(t, uri, "snapshot-delete", "so", "off1")
	if l := qemuImgSnapshots(t, img); strings.Contains(l, "off1") {
		t.Errorf("the snapshot is still in the image:\n%s", l)
	}
	MustVirsh(t, uri, "undefine", "so")

	// A raw disk cannot hold internal snapshots.
	rawSerial := filepath.Join(h.Dir, "raw.serial")
	rawImg := filepath.Join(h.Dir, "raw.img")
	if err := os.WriteFile(rawImg, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	rx := strings.Replace(GuestXML(t, GuestOptions{Name: "sr", Serial: rawSerial}), "<devices>\n",
		"<devices>\n    <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='"+rawImg+"'/><target dev='vda' bus='virtio'/></disk>\n", 1)
	p := filepath.Join(h.Dir, "sr.xml")
	os.WriteFile(p, []byte(rx), 0o644)
	MustVirsh(t, uri, "define", p)
	virshFails(t, uri, "unsupported configuration: internal snapshot for disk vda unsupported for storage type raw", "snapshot-create-as", "sr", "x")
	if n := strings.TrimSpace(MustVirsh(t, uri, "snapshot-list", "sr", "--name")); n != "" {
		t.Errorf("a failed snapshot is listed: %q", n)
	}
}

// TestSnapshotDiskOnlyExternal: virsh snapshot-create-as --disk-only of a
// running guest puts a new qcow2 overlay over its disk; the guest goes on
// writing and reading its disk without a mismatch, the live XML shows the
// overlay with the old image as its backing store. Revert and delete of
// external snapshots are refused as libvirt 9.0 refuses them.
func TestSnapshotDiskOnlyExternal(t *testing.T) {
	deps.Require(t, "virsh", "qemu-system-x86_64", "qemu-img")
	t.Parallel()
	h := StartHost(t, HostOptions{Name: "snapext"})
	uri := h.URI()
	serial, img, _, _ := diskGuest(t, h, h, "se", "qcow2", 512)
	c := waitDiskCheck(t, serial, 0, 2*time.Minute)

	MustVirsh(t, uri, "snapshot-create-as", "se", "e1", "--disk-only", "--atomic")
	overlay := strings.TrimSuffix(img, ".qcow2") + ".e1"
	if _, err := os.Stat(overlay); err != nil {
		t.Fatalf("no overlay: %v", err)
	}
	live := MustVirsh(t, uri, "dumpxml", "se")
	requireContains(t, "dumpxml", live, "<source file='"+overlay+"' index='2'/>", "<backingStore type='file' index='1'>", "<source file='"+img+"'/>")
	// The persistent definition records the old image under the
	// overlay, as libvirt's does.
	requireContains(t, "dumpxml --inactive", MustVirsh(t, uri, "dumpxml", "--inactive", "se"), "<source file='"+overlay+"'/>\n      <backingStore type='file'>\n        <format type='qcow2'/>\n        <source file='"+img+"'/>\n      </backingStore>")
	// The statistics follow the disk to its new top image.
	stats := MustVirsh(t, uri, "domstats", "--block", "se")
	requireContains(t, "domstats --block", stats, "block.0.path="+overlay, "block.0.backingIndex=2")
	if r := Virsh(t, uri, "domblkstat", "se", "vda"); r.Err != nil || !strings.Contains(r.Stdout, "wr_req") {
		t.Errorf("domblkstat after the snapshot: %s", r)
	}
	info := run(t, time.Minute, "qemu-img", "info", "-U", overlay)
	requireContains(t, "qemu-img info", info.Stdout, "backing file: "+img)
	// The guest keeps writing its disk (now the overlay) and reads back
	// what it wrote.
	c = waitDiskCheck(t, serial, c.N, 2*time.Minute)
	c = waitDiskCheck(t, serial, c.N, 2*time.Minute)
	if c.Mism != 0 || c.Written == 0 {
		t.Fatalf("disk check after the snapshot: %+v", c)
	}
	sx := MustVirsh(t, uri, "snapshot-dumpxml", "se", "e1")
	requireContains(t, "snapshot-dumpxml", sx, "<state>disk-snapshot</state>", "<memory snapshot='no'/>",
		"<disk name='vda' snapshot='external' type='file'>", "<source file='"+overlay+"'/>")
	if n := strings.TrimSpace(MustVirsh(t, uri, "snapshot-list", "se", "--external", "--name")); n != "e1" {
		t.Errorf("snapshot-list --external = %q", n)
	}
	if n := strings.TrimSpace(MustVirsh(t, uri, "snapshot-list", "se", "--disk-only", "--name")); n != "e1" {
		t.Errorf("snapshot-list --disk-only = %q", n)
	}

	// A restarted daemon finds the guest on its overlay, by the node
	// names the live definition records.
	h.Restart()
	requireContains(t, "dumpxml after a restart", MustVirsh(t, uri, "dumpxml", "se"), "<source file='"+overlay+"' index='2'/>")

	// A second one, the first one's child: a new overlay, index 3.
	MustVirsh(t, uri, "snapshot-create-as", "se", "e2", "--disk-only")
	overlay2 := strings.TrimSuffix(img, ".qcow2") + ".e2"
	requireContains(t, "dumpxml", MustVirsh(t, uri, "dumpxml", "se"), "<source file='"+overlay2+"' index='3'/>", "<backingStore type='file' index='2'>")
	if p := strings.TrimSpace(MustVirsh(t, uri, "snapshot-parent", "se", "e2")); p != "e1" {
		t.Errorf("snapshot-parent e2 = %q", p)
	}
	c = waitDiskCheck(t, serial, c.N, 2*time.Minute)

	virshFails(t, uri, "external snapshot file for disk vda already exists and is not a block device: "+overlay, "snapshot-create-as", "se", "e1b", "--disk-only", "--diskspec", "vda,file="+overlay)
	virshFails(t, uri, "QEMU guest agent is not configured", "snapshot-create-as", "se", "q", "--disk-only", "--quiesce")
	virshFails(t, uri, "unsupported configuration: revert to external snapshot not supported yet", "snapshot-revert", "se", "e1")
	virshFails(t, uri, "unsupported configuration: deletion of external disk snapshots with children not supported", "snapshot-delete", "se", "e1", "--children")

	// Deleting e1 commits its overlay into the image under it, below
	// e2's overlay; deleting e2 then commits the active top and pivots.
	MustVirsh(t, uri, "snapshot-delete", "se", "e1")
	if _, err := os.Stat(overlay); !os.IsNotExist(err) {
		t.Errorf("the merged overlay is still there: %v", err)
	}
	live = MustVirsh(t, uri, "dumpxml", "se")
	requireContains(t, "dumpxml after deleting e1", live, "<source file='"+overlay2+"' index='3'/>", "<backingStore type='file' index='1'>", "<source file='"+img+"'/>")
	if strings.Contains(live, overlay+"'") {
		t.Errorf("the live XML still has the merged overlay:\n%s", live)
	}
	inactive := MustVirsh(t, uri, "dumpxml", "--inactive", "se")
	requireContains(t, "dumpxml --inactive after deleting e1", inactive, "<source file='"+overlay2+"'/>\n      <backingStore type='file'>\n        <format type='qcow2'/>\n        <source file='"+img+"'/>\n      </backingStore>")
	if strings.Contains(inactive, overlay+"'") {
		t.Errorf("the persistent XML still has the merged overlay:\n%s", inactive)
	}
	if n := strings.TrimSpace(MustVirsh(t, uri, "snapshot-list", "se", "--roots", "--name")); n != "e2" {
		t.Errorf("snapshot-list --roots after deleting e1 = %q", n)
	}
	c = waitDiskCheck(t, serial, c.N, 2*time.Minute)
	MustVirsh(t, uri, "snapshot-delete", "se", "e2")
	if _, err := os.Stat(overlay2); !os.IsNotExist(err) {
		t.Errorf("the merged top overlay is still there: %v", err)
	}
	requireContains(t, "dumpxml after deleting e2", MustVirsh(t, uri, "dumpxml", "se"), "<source file='"+img+"' index='1'/>")
	requireContains(t, "dumpxml --inactive after deleting e2", MustVirsh(t, uri, "dumpxml", "--inactive", "se"), "<source file='"+img+"'/>")
	c = waitDiskCheck(t, serial, c.N, 2*time.Minute)
	c = waitDiskCheck(t, serial, c.N, 2*time.Minute)
	if c.Mism != 0 || c.Written == 0 {
		t.Fatalf("disk check after the deletions: %+v", c)
	}

	// Without metadata: an overlay, not listed; its metadata-only delete.
	MustVirsh(t, uri, "snapshot-create-as", "se", "e3", "--disk-only", "--no-metadata")
	overlay3 := strings.TrimSuffix(img, ".qcow2") + ".e3"
	requireContains(t, "dumpxml", MustVirsh(t, uri, "dumpxml", "se"), "<source file='"+overlay3+"' index='2'/>")
	if n := strings.TrimSpace(MustVirsh(t, uri, "snapshot-list", "se", "--name")); n != "" {
		t.Errorf("snapshot-list after a --no-metadata snapshot = %q", n)
	}
	MustVirsh(t, uri, "snapshot-create-as", "se", "e4", "--disk-only")
	overlay4 := strings.TrimSuffix(img, ".qcow2") + ".e4"
	MustVirsh(t, uri, "snapshot-delete", "se", "e4", "--metadata")
	if _, err := os.Stat(overlay4); err != nil {
		t.Errorf("delete --metadata removed the overlay: %v", err)
	}
	c = waitDiskCheck(t, serial, c.N, 2*time.Minute)
	if c.Mism != 0 {
		t.Fatalf("disk check: %+v", c)
	}

	// Offline, with a file made beforehand (--reuse-external).
	MustVirsh(t, uri, "destroy", "se")
	pre := filepath.Join(h.Dir, "pre.qcow2")
	if r := run(t, time.Minute, "qemu-img", "create", "-f", "qcow2", "-b", overlay4, "-F", "qcow2", pre); r.Err != nil {
		t.Fatal(r)
	}
	MustVirsh(t, uri, "snapshot-create-as", "se", "e5", "--disk-only", "--reuse-external", "--diskspec", "vda,file="+pre)
	requireContains(t, "dumpxml --inactive", MustVirsh(t, uri, "dumpxml", "--inactive", "se"), "<source file='"+pre+"'/>")
	if st := MustVirsh(t, uri, "snapshot-dumpxml", "se", "e5"); !strings.Contains(st, "<state>shutoff</state>") {
		t.Errorf("offline external snapshot:\n%s", st)
	}
	// Deleting it offline commits pre.qcow2 into the image under it.
	MustVirsh(t, uri, "snapshot-delete", "se", "e5")
	requireContains(t, "dumpxml --inactive after an offline delete", MustVirsh(t, uri, "dumpxml", "--inactive", "se"), "<source file='"+overlay4+"'/>")
	if _, err := os.Stat(pre); !os.IsNotExist(err) {
		t.Errorf("the merged overlay is still there: %v", err)
	}
	MustVirsh(t, uri, "start", "se")
	requireContains(t, "dumpxml after start", MustVirsh(t, uri, "dumpxml", "se"), "<source file='"+overlay4+"' index='1'/>", "<source file='"+overlay3+"'/>", "<source file='"+img+"'/>")
	WaitTicks(t, serial, 0, time.Minute)
}

// snapshotAPIScript exercises the snapshot calls virsh does not use
// (the count and name-list ones) through python3-libvirt.
const snapshotAPIScript = `
import sys, libvirt
c = libvirt.open(sys.argv[1])
d = c.lookupByName("sp")
print("num", d.snapshotNum(), d.snapshotNum(libvirt.VIR_DOMAIN_SNAPSHOT_LIST_ROOTS))
print("names", " ".join(sorted(d.snapshotListNames())))
s1 = d.snapshotLookupByName("s1")
print("children", s1.numChildren(), " ".join(s1.listChildrenNames()), " ".join(x.getName() for x in s1.listAllChildren()))
print("current", d.hasCurrentSnapshot(), d.snapshotCurrent().getName())
s2 = d.snapshotLookupByName("s2")
print("s2", s2.getParent().getName(), bool(s2.isCurrent()), bool(s1.isCurrent()), bool(s2.hasMetadata()))
print("leaves", " ".join(sorted(x.getName() for x in d.listAllSnapshots(libvirt.VIR_DOMAIN_SNAPSHOT_LIST_LEAVES))))
print("nometa", len(d.listAllSnapshots(libvirt.VIR_DOMAIN_SNAPSHOT_LIST_NO_METADATA)))
try:
    s1.getParent()
except libvirt.libvirtError as e:
    print("err", e.get_error_code(), e.get_error_domain(), e.get_error_message())
try:
    d.snapshotCreateXML("<domainsnapshot><name>r1</name><state>shutoff</state><creationTime>5</creationTime></domainsnapshot>", libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE)
except libvirt.libvirtError as e:
    print("err", e.get_error_code(), e.get_error_domain(), e.get_error_message())
for x in ["<bogus/>", "<domainsnapshot><memory snapshot='what'/></domainsnapshot>", "<domainsnapshot><disks><disk name='vdz'/></disks></domainsnapshot>"]:
    try:
        d.snapshotCreateXML(x)
    except libvirt.libvirtError as e:
        print("err", e.get_error_code(), e.get_error_domain(), e.get_error_message())
print("left", d.snapshotNum())
`

// TestSnapshotAPI: the count, list and tree calls through the libvirt
// Python binding, with libvirt's error for a root's parent.
func TestSnapshotAPI(t *testing.T) {
	deps.Require(t, "virsh", "qemu-system-x86_64", "qemu-img")
	t.Parallel()
	h := StartHost(t, HostOptions{Name: "snapapi"})
	uri := h.URI()
	diskGuest(t, h, h, "sp", "qcow2", 0)
	MustVirsh(t, uri, "destroy", "sp")
	MustVirsh(t, uri, "snapshot-create-as", "sp", "s1")
	MustVirsh(t, uri, "snapshot-create-as", "sp", "s2")
	r := Python(t, snapshotAPIScript, uri)
	if r.Err != nil {
		t.Fatalf("python: %s", r)
	}
	want := []string{
		"num 2 1",
		"names s1 s2",
		"children 1 s2 s2",
		"current 1 s2",
		"s2 s1 True False True",
		"leaves s2",
		"nometa 0",
		"err 72 10 Domain snapshot not found: snapshot 's1' does not have a parent",
		"err 1 35 internal error: missing domain in snapshot",
		"err 27 5 XML error: expecting root element of 'domainsnapshot', not 'bogus'",
		"err 27 5 XML error: Invalid value for attribute 'snapshot' in element 'memory': 'what'.",
		"err 67 35 unsupported configuration: no disk named 'vdz'",
		"left 2",
	}
	if got := lines(r.Stdout); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("python3-libvirt printed:\n%s\nwant:\n%s", r.Stdout, strings.Join(want, "\n"))
	}
}
