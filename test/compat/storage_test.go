package compat_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/govirtd/govirtd/test/deps"
)

// allocated is how many bytes of a file are on disk.
func allocated(t *testing.T, path string) int64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}

// sparseImage writes a 6 MiB file: 1 MiB of random data, a 4 MiB hole,
// 1 MiB of random data.
func sparseImage(t *testing.T, path string) []byte {
	t.Helper()
	const mib = 1 << 20
	want := make([]byte, 6*mib)
	rand.Read(want[:mib])
	rand.Read(want[5*mib:])
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(want[:mib], 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(want[5*mib:], 5*mib); err != nil {
		t.Fatal(err)
	}
	return want
}

func mustContain(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s: no %q in:\n%s", what, w, got)
		}
	}
}

// TestStoragePoolAndVolumes drives a dir pool and its volumes through
// virsh's pool-* and vol-* commands: build, start, autostart, volumes raw
// and qcow2, upload and download (plain and sparse), clone, resize, wipe,
// delete, refresh, the read-only socket, libvirt's errors, and the pool
// coming back after a daemon restart.
func TestStoragePoolAndVolumes(t *testing.T) {
	deps.Require(t, "virsh", "qemu-img")
	h := StartHost(t, HostOptions{})
	uri := h.UnixURI()
	dir := filepath.Join(h.Dir, "pool-a")

	MustVirsh(t, uri, "pool-define-as", "a", "dir", "--target", dir)
	mustContain(t, "pool-list --all", MustVirsh(t, uri, "pool-list", "--all"), "a", "inactive")
	mustFail(t, uri, "cannot open directory", "pool-start", "a")
	MustVirsh(t, uri, "pool-build", "a")
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		t.Fatalf("pool-build did not make %s: %v", dir, err)
	}
	MustVirsh(t, uri, "pool-start", "a")
	MustVirsh(t, uri, "pool-autostart", "a")
	mustContain(t, "pool-info", MustVirsh(t, uri, "pool-info", "a"), "State:          running", "Persistent:     yes", "Autostart:      yes")
	mustContain(t, "pool-dumpxml", MustVirsh(t, uri, "pool-dumpxml", "a"), "<pool type='dir'>", "<name>a</name>", "<path>"+dir+"</path>", "<capacity unit='bytes'>")

	// --allocation 0: sparse (libvirt allocates a raw volume in full by
	// default).
	MustVirsh(t, uri, "vol-create-as", "a", "disk.raw", "16M", "--format", "raw", "--allocation", "0")
	MustVirsh(t, uri, "vol-create-as", "a", "disk.qcow2", "64M", "--format", "qcow2")
	if st, err := os.Stat(filepath.Join(dir, "disk.raw")); err != nil || st.Size() != 16<<20 {
		t.Fatalf("disk.raw: %v %v", st, err)
	}
	info := run(t, 30*time.Second, "qemu-img", "info", filepath.Join(dir, "disk.qcow2"))
	mustContain(t, "qemu-img info", info.Stdout, "file format: qcow2", "virtual size: 64 MiB")
	mustContain(t, "vol-list", MustVirsh(t, uri, "vol-list", "a"), "disk.raw", "disk.qcow2")
	if got := strings.TrimSpace(MustVirsh(t, uri, "vol-path", "--pool", "a", "disk.qcow2")); got != filepath.Join(dir, "disk.qcow2") {
		t.Errorf("vol-path = %q", got)
	}
	mustContain(t, "vol-dumpxml", MustVirsh(t, uri, "vol-dumpxml", "--pool", "a", "disk.qcow2"),
		"<name>disk.qcow2</name>", "<capacity unit='bytes'>67108864</capacity>", "<format type='qcow2'/>")
	mustContain(t, "vol-info", MustVirsh(t, uri, "vol-info", "--pool", "a", "disk.raw"), "Type:           file", "Capacity:       16.00 MiB")
	mustFail(t, uri, "storage volume 'disk.raw' exists already", "vol-create-as", "a", "disk.raw", "1M")

	// Upload a sparse image sparsely, download it both ways.
	src := filepath.Join(h.Dir, "src.img")
	want := sparseImage(t, src)
	MustVirsh(t, uri, "vol-upload", "--pool", "a", "disk.raw", src, "--sparse")
	mustContain(t, "vol-info after the sparse upload", MustVirsh(t, uri, "vol-info", "--pool", "a", "disk.raw"), "Capacity:       6.00 MiB")
	if a := allocated(t, filepath.Join(dir, "disk.raw")); a > 3<<20 {
		t.Errorf("sparse upload allocated %d bytes for 2 MiB of data", a)
	}
	for _, sparse := range []bool{false, true} {
		out := filepath.Join(h.Dir, "out.img")
		os.Remove(out)
		args := []string{"vol-download", "--pool", "a", "disk.raw", out}
		if sparse {
			args = append(args, "--sparse")
		}
		MustVirsh(t, uri, args...)
		got, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		// A sparse upload sets where the volume ends, as libvirtd's.
		if !bytes.Equal(got, want) {
			t.Errorf("download (sparse %v): %d bytes, not what was uploaded", sparse, len(got))
		}
		if a := allocated(t, out); sparse && a > 3<<20 {
			t.Errorf("sparse download allocated %d bytes", a)
		}
	}
	// A plain upload at an offset.
	part := filepath.Join(h.Dir, "part.img")
	os.WriteFile(part, []byte("govirtd was here"), 0o644)
	MustVirsh(t, uri, "vol-upload", "--pool", "a", "disk.raw", part, "--offset", "4096")
	out := filepath.Join(h.Dir, "part.out")
	MustVirsh(t, uri, "vol-download", "--pool", "a", "disk.raw", out, "--offset", "4096", "--length", "16")
	if got, _ := os.ReadFile(out); string(got) != "govirtd was here" {
		t.Errorf("download at offset = %q", got)
	}

	if got := strings.TrimSpace(MustVirsh(t, uri, "vol-key", "--pool", "a", "disk.qcow2")); got != filepath.Join(dir, "disk.qcow2") {
		t.Errorf("vol-key = %q", got)
	}
	// vol-create-from: a raw copy of disk.raw, as big as its XML says.
	fromXML := filepath.Join(h.Dir, "from.xml")
	os.WriteFile(fromXML, []byte("<volume><name>from.raw</name><capacity unit='M'>20</capacity><allocation>0</allocation><target><format type='raw'/></target></volume>"), 0o644)
	MustVirsh(t, uri, "vol-create-from", "a", fromXML, "disk.raw", "--inputpool", "a")
	MustVirsh(t, uri, "vol-download", "--pool", "a", "from.raw", out, "--offset", "4096", "--length", "16")
	if got, _ := os.ReadFile(out); string(got) != "govirtd was here" {
		t.Errorf("vol-create-from copy at offset 4096 = %q", got)
	}
	mustContain(t, "vol-info from.raw", MustVirsh(t, uri, "vol-info", "--pool", "a", "from.raw"), "Capacity:       20.00 MiB")
	MustVirsh(t, uri, "vol-delete", "--pool", "a", "from.raw")
	MustVirsh(t, uri, "vol-clone", "--pool", "a", "disk.qcow2", "clone.qcow2")
	mustContain(t, "clone", run(t, 30*time.Second, "qemu-img", "info", filepath.Join(dir, "clone.qcow2")).Stdout, "file format: qcow2", "virtual size: 64 MiB")
	MustVirsh(t, uri, "vol-resize", "--pool", "a", "disk.raw", "32M")
	mustContain(t, "vol-info after resize", MustVirsh(t, uri, "vol-info", "--pool", "a", "disk.raw"), "Capacity:       32.00 MiB")
	MustVirsh(t, uri, "vol-resize", "--pool", "a", "disk.qcow2", "16M", "--delta")
	mustContain(t, "vol-info after --delta", MustVirsh(t, uri, "vol-info", "--pool", "a", "disk.qcow2"), "Capacity:       80.00 MiB")
	mustFail(t, uri, "shrink", "vol-resize", "--pool", "a", "disk.raw", "8M")
	MustVirsh(t, uri, "vol-wipe", "--pool", "a", "disk.raw")
	MustVirsh(t, uri, "vol-download", "--pool", "a", "disk.raw", out)
	if got, _ := os.ReadFile(out); len(got) != 32<<20 || !bytes.Equal(got, make([]byte, len(got))) {
		t.Errorf("after vol-wipe: %d bytes, not all zero", len(got))
	}
	MustVirsh(t, uri, "vol-delete", "--pool", "a", "clone.qcow2")
	if _, err := os.Stat(filepath.Join(dir, "clone.qcow2")); !os.IsNotExist(err) {
		t.Errorf("vol-delete left the file: %v", err)
	}

	// A file put in the directory appears at pool-refresh.
	os.WriteFile(filepath.Join(dir, "extra.img"), make([]byte, 1<<20), 0o644)
	MustVirsh(t, uri, "pool-refresh", "a")
	mustContain(t, "vol-list after refresh", MustVirsh(t, uri, "vol-list", "a"), "extra.img")

	mustFail(t, h.ROURI(), "read only access prevents virStorageVolCreateXML", "vol-create-as", "a", "ro.raw", "1M")
	mustFail(t, h.ROURI(), "read only access prevents virStoragePoolDestroy", "pool-destroy", "a")
	mustFail(t, uri, "Storage volume not found: no storage vol with matching path 'nosuch'", "vol-info", "--pool", "a", "nosuch")
	mustFail(t, uri, "no storage pool with matching name 'nosuch'", "pool-info", "nosuch")
	mustFail(t, uri, "already exists", "pool-define-as", "a", "dir", "--target", dir)

	// Persistent and autostarted: back, running, after a restart.
	h.Restart()
	mustContain(t, "pool-info after restart", MustVirsh(t, uri, "pool-info", "a"), "State:          running", "Autostart:      yes")
	mustContain(t, "vol-list after restart", MustVirsh(t, uri, "vol-list", "a"), "disk.raw", "disk.qcow2", "extra.img")

	mustFail(t, uri, "storage pool 'a' is still active", "pool-delete", "a")
	MustVirsh(t, uri, "pool-destroy", "a")
	mustFail(t, uri, "Directory not empty", "pool-delete", "a")
	MustVirsh(t, uri, "pool-start", "a")
	for _, v := range []string{"disk.raw", "disk.qcow2", "extra.img"} {
		MustVirsh(t, uri, "vol-delete", "--pool", "a", v)
	}
	mustFail(t, uri, "is still active", "pool-undefine", "a")
	MustVirsh(t, uri, "pool-destroy", "a")
	MustVirsh(t, uri, "pool-delete", "a")
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("pool-delete left %s: %v", dir, err)
	}
	MustVirsh(t, uri, "pool-undefine", "a")
	if got := MustVirsh(t, uri, "pool-list", "--all", "--name"); strings.TrimSpace(got) != "" {
		t.Errorf("pools left: %q", got)
	}
}

// TestStoragePoolEvents: python-libvirt's storage pool callbacks see a
// pool defined, started, refreshed, stopped and undefined, in that order.
func TestStoragePoolEvents(t *testing.T) {
	h := StartHost(t, HostOptions{})
	dir := filepath.Join(h.Dir, "evpool")
	os.Mkdir(dir, 0o755)
	script := `
import sys, threading, time, libvirt
libvirt.virEventRegisterDefaultImpl()
def loop():
    while True:
        libvirt.virEventRunDefaultImpl()
threading.Thread(target=loop, daemon=True).start()
c = libvirt.open(sys.argv[1])
seen = []
def life(conn, pool, event, detail, opaque):
    seen.append("%s:%d:%d" % (pool.name(), event, detail))
def refresh(conn, pool, opaque):
    seen.append("%s:refresh" % pool.name())
c.storagePoolEventRegisterAny(None, libvirt.VIR_STORAGE_POOL_EVENT_ID_LIFECYCLE, life, None)
c.storagePoolEventRegisterAny(None, libvirt.VIR_STORAGE_POOL_EVENT_ID_REFRESH, refresh, None)
p = c.storagePoolDefineXML("<pool type='dir'><name>ev</name><target><path>%s</path></target></pool>" % sys.argv[2])
p.create()
p.refresh()
p.destroy()
p.undefine()
deadline = time.time() + 10
while len(seen) < 5 and time.time() < deadline:
    time.sleep(0.05)
print(" ".join(seen))
`
	r := Python(t, script, h.UnixURI(), dir)
	if r.Err != nil {
		t.Fatalf("python: %s", r)
	}
	// VIR_STORAGE_POOL_EVENT_DEFINED, STARTED, refresh, STOPPED, UNDEFINED.
	if got := strings.TrimSpace(r.Stdout); got != "ev:0:0 ev:2:0 ev:refresh ev:3:0 ev:1:0" {
		t.Errorf("events %q", got)
	}
}

// TestVolumeDiskGuest: a guest whose disk is <disk type='volume'> on a
// qcow2 pool volume writes and reads back its disk blocks; the live
// definition has the volume's path, the persistent one the pool and
// volume.
func TestVolumeDiskGuest(t *testing.T) {
	deps.Require(t, "virsh", "qemu-system-x86_64", "qemu-img")
	h := StartHost(t, HostOptions{})
	uri := h.UnixURI()
	dir := filepath.Join(h.Dir, "images")
	MustVirsh(t, uri, "pool-create-as", "images", "dir", "--target", dir, "--build")
	MustVirsh(t, uri, "vol-create-as", "images", "guest.qcow2", "64M", "--format", "qcow2")
	serial := filepath.Join(h.Dir, "voldisk.serial")
	disk := `<disk type='volume' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source pool='images' volume='guest.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
`
	x := strings.Replace(GuestXML(t, GuestOptions{Name: "voldisk", Serial: serial}), "<devices>\n", "<devices>\n    "+disk, 1)
	x = strings.Replace(x, "tick_ms=200", "tick_ms=200 disk_blocks=16 disk_rate=8", 1)
	path := filepath.Join(h.Dir, "voldisk.xml")
	os.WriteFile(path, []byte(x), 0o644)
	MustVirsh(t, uri, "define", path)
	MustVirsh(t, uri, "start", "voldisk")
	t.Cleanup(func() { Virsh(t, uri, "destroy", "voldisk") })
	c := waitDiskCheck(t, serial, 0, 2*time.Minute)
	if c.Checked == 0 {
		t.Errorf("the guest checked no disk blocks: %+v", c)
	}
	mustContain(t, "live XML", MustVirsh(t, uri, "dumpxml", "voldisk"), "<source file='"+filepath.Join(dir, "guest.qcow2")+"'")
	mustContain(t, "inactive XML", MustVirsh(t, uri, "dumpxml", "--inactive", "voldisk"), "<source pool='images' volume='guest.qcow2'/>")

	// A volume that is not there stops the start with libvirt's error.
	MustVirsh(t, uri, "destroy", "voldisk")
	MustVirsh(t, uri, "vol-delete", "--pool", "images", "guest.qcow2")
	mustFail(t, uri, "no storage vol with matching name 'guest.qcow2'", "start", "voldisk")
}

var ptyDiskLine = regexp.MustCompile(`GUEST DISK id=[0-9a-f]+ n=\d+ written=\d+ checked=(\d+) dmism=(\d+)`)

// ptyDiskCheck reads the guest's pty console until it reports a disk check
// of some blocks, and fails on a mismatch.
func ptyDiskCheck(t *testing.T, tty string, timeout time.Duration) {
	t.Helper()
	f, err := os.OpenFile(tty, os.O_RDONLY|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open console %s: %v", tty, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	go func() { <-ctx.Done(); f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := ptyDiskLine.FindStringSubmatch(sc.Text()); m != nil {
			if m[2] != "0" {
				t.Fatalf("the guest read back blocks it did not write: %s", sc.Text())
			}
			if n, _ := strconv.Atoi(m[1]); n > 0 {
				return
			}
		}
	}
	t.Fatalf("no disk check on %s within %v", tty, timeout)
}

// TestVirtInstallPoolDisk: virt-install, unmodified, creates a 1 GiB
// volume in the pool 'default' (--disk size=1) and boots a guest on it
// with its NIC on the network 'default' (the acceptance command);
// the guest writes and reads back its disk.
func TestVirtInstallPoolDisk(t *testing.T) {
	requireNetworkTools(t)
	deps.Require(t, "virt-install", "virsh", "qemu-img")
	kernel, initrd := testGuest(t)
	h := StartHost(t, HostOptions{NetNS: true})
	uri := h.UnixURI()
	dir := filepath.Join(h.Dir, "images")
	MustVirsh(t, uri, "pool-define-as", "default", "dir", "--target", dir)
	MustVirsh(t, uri, "pool-build", "default")
	MustVirsh(t, uri, "pool-start", "default")
	args := "console=ttyS0 quiet cryptomgr.notests pti=on tick_ms=200 disk_blocks=16 disk_rate=8"
	r := run(t, 2*time.Minute, "virt-install", "--connect", uri,
		"--import", "--name", "vi-pool", "--virt-type", "qemu", "--memory", "128", "--vcpus", "1",
		"--disk", "size=1,bus=virtio", "--network", "network=default", "--osinfo", "detect=on,require=off",
		"--boot", "kernel="+kernel+",initrd="+initrd+",kernel_args="+args,
		"--noautoconsole")
	if r.Err != nil {
		t.Fatalf("virt-install: %s", r)
	}
	t.Cleanup(func() { Virsh(t, uri, "destroy", "vi-pool") })
	vols := MustVirsh(t, uri, "vol-list", "default")
	mustContain(t, "vol-list default", vols, "vi-pool.qcow2")
	mustContain(t, "vol-info", MustVirsh(t, uri, "vol-info", "--pool", "default", "vi-pool.qcow2"), "Capacity:       1.00 GiB")
	live := dumpLive(t, uri, "vi-pool")
	mustContain(t, "live XML", MustVirsh(t, uri, "dumpxml", "vi-pool"), filepath.Join(dir, "vi-pool.qcow2"), "<source network='default' bridge='virbr0'/>")
	ptyDiskCheck(t, live.Devices.Consoles[0].TTY, 2*time.Minute)
}
