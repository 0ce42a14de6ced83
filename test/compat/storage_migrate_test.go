package compat_test

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/govirtd/govirtd/test/deps"
)

// diskGuest defines and starts on a the test guest with one local disk
// (format raw or qcow2) at a's own path, filled with random data, and
// returns the destination XML (--xml) that puts the disk at b's path: the
// two hosts share this machine's file system, so the copy needs a path of
// its own.
func diskGuest(t *testing.T, a, b *Host, name, format string, writeBlocks int, moreDisks ...string) (serial, srcImg, dstImg, dstXML string) {
	t.Helper()
	deps.Require(t, "qemu-img")
	serial = filepath.Join(a.Dir, name+".serial")
	raw := filepath.Join(t.TempDir(), "data.raw")
	data := make([]byte, 24<<20)
	rand.Read(data[:8<<20]) // some data, and some zeroes
	if err := os.WriteFile(raw, data, 0o644); err != nil {
		t.Fatal(err)
	}
	srcImg = filepath.Join(a.Dir, name+"."+format)
	dstImg = filepath.Join(b.Dir, name+"."+format)
	if r := run(t, time.Minute, "qemu-img", "convert", "-f", "raw", "-O", format, raw, srcImg); r.Err != nil {
		t.Fatal(r)
	}
	disk := fmt.Sprintf(`<disk type='file' device='disk'>
      <driver name='qemu' type='%s' cache='none'/>
      <source file='%s'/>
      <target dev='vda' bus='virtio'/>
    </disk>
`, format, srcImg)
	xml := strings.Replace(GuestXML(t, GuestOptions{Name: name, Serial: serial}), "<devices>\n", "<devices>\n    "+disk+strings.Join(moreDisks, ""), 1)
	if writeBlocks > 0 {
		// The guest keeps writing and re-reading the disk's first blocks.
		xml = strings.Replace(xml, "tick_ms=200", fmt.Sprintf("tick_ms=200 disk_blocks=%d disk_rate=8", writeBlocks), 1)
	}
	path := filepath.Join(a.Dir, name+".xml")
	if err := os.WriteFile(path, []byte(xml), 0o644); err != nil {
		t.Fatal(err)
	}
	MustVirsh(t, a.URI(), "define", path)
	MustVirsh(t, a.URI(), "start", name)
	WaitTicks(t, serial, 2, 60*time.Second)
	mig := MustVirsh(t, a.URI(), "dumpxml", "--migratable", name)
	dstXML = filepath.Join(a.Dir, name+"-dst.xml")
	if err := os.WriteFile(dstXML, []byte(strings.ReplaceAll(mig, srcImg, dstImg)), 0o644); err != nil {
		t.Fatal(err)
	}
	return serial, srcImg, dstImg, dstXML
}

// DiskCheck is one GUEST DISK line: the guest's check of the blocks it
// wrote.
type DiskCheck struct {
	BootID                    string
	N, Written, Checked, Mism int
}

var diskLine = regexp.MustCompile(`GUEST DISK id=([0-9a-f]+) n=(\d+) written=(\d+) checked=(\d+) dmism=(\d+)`)

// DiskChecks parses a serial log's GUEST DISK lines.
func DiskChecks(path string) []DiskCheck {
	data, _ := os.ReadFile(path)
	var out []DiskCheck
	for _, m := range diskLine.FindAllStringSubmatch(string(data), -1) {
		c := DiskCheck{BootID: m[1]}
		c.N, _ = strconv.Atoi(m[2])
		c.Written, _ = strconv.Atoi(m[3])
		c.Checked, _ = strconv.Atoi(m[4])
		c.Mism, _ = strconv.Atoi(m[5])
		out = append(out, c)
	}
	return out
}

// waitDiskCheck waits for a disk check after tick n, and fails on any
// mismatch the guest reported.
func waitDiskCheck(t *testing.T, serial string, after int, timeout time.Duration) DiskCheck {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		cs := DiskChecks(serial)
		for _, c := range cs {
			if c.Mism != 0 {
				data, _ := os.ReadFile(serial)
				t.Fatalf("the guest read back %d blocks that were not what it wrote:\n%s", c.Mism, tail(string(data), 20))
			}
		}
		if len(cs) > 0 && cs[len(cs)-1].N > after {
			return cs[len(cs)-1]
		}
		if time.Now().After(deadline) {
			data, _ := os.ReadFile(serial)
			t.Fatalf("no disk check after tick %d within %v:\n%s", after, timeout, tail(string(data), 10))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// fileSum is a file's SHA-256.
func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// sameImage: the destination's copy holds exactly the source's data
// (qemu-img compare reads through the formats; -U because QEMU has them
// open).
func sameImage(t *testing.T, a, b string) {
	t.Helper()
	if r := run(t, time.Minute, "qemu-img", "compare", "-U", a, b); r.Err != nil {
		t.Fatalf("images differ: %s", r)
	}
}

// TestMigrateCopyStorage: --copy-storage-all moves a local raw or qcow2
// disk with the guest, managed and peer-to-peer: the destination creates
// the image, the guest keeps running the same boot, and the copy is
// identical to the source's.
func TestMigrateCopyStorage(t *testing.T) {
	deps.Require(t, "virsh", "qemu-system-x86_64")
	for _, c := range []struct {
		name, format, mode string
		// write: the guest writes its disk during the move (then the
		// source's image is behind the copy, so the guest's own check
		// proves it); otherwise the images must be identical.
		write bool
	}{
		{"raw-managed", "raw", "", false},
		{"raw-managed-writing", "raw", "", true},
		{"qcow2-p2p-writing", "qcow2", "--p2p", true},
		{"raw-syncwrites", "raw", "--copy-storage-synchronous-writes", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			a := StartHost(t, HostOptions{Name: c.name + "-a"})
			b := StartHost(t, HostOptions{Name: c.name + "-b"})
			name := "cs" + strings.ReplaceAll(c.name, "-", "")
			blocks := 0
			if c.write {
				blocks = 1024
			}
			serial, srcImg, dstImg, dstXML := diskGuest(t, a, b, name, c.format, blocks)
			if c.write {
				waitDiskCheck(t, serial, 0, time.Minute)
			}
			before, _ := LastTick(serial)
			args := []string{"-c", a.URI(), "migrate", "--live", "--copy-storage-all", "--verbose", "--xml", dstXML}
			if c.mode != "" {
				args = append(args, c.mode)
			}
			r := run(t, 3*time.Minute, "virsh", append(args, name, b.URI())...)
			if r.Err != nil {
				t.Fatalf("virsh migrate: %s", r)
			}
			checkMoved(t, a, b, name, serial, before)
			if _, err := os.Stat(dstImg); err != nil {
				t.Fatalf("destination image: %v", err)
			}
			if info := run(t, time.Minute, "qemu-img", "info", "-U", dstImg); !strings.Contains(info.Stdout, "file format: "+c.format) {
				t.Errorf("destination image is not %s:\n%s", c.format, info.Stdout)
			}
			if c.write {
				// Every block written before and during the move reads
				// back right on the destination, twice over.
				last := waitDiskCheck(t, serial, before.N, time.Minute)
				last = waitDiskCheck(t, serial, last.N, time.Minute)
				if last.BootID != before.BootID || last.Written <= 0 {
					t.Fatalf("disk check after the move: %+v", last)
				}
			} else {
				sameImage(t, srcImg, dstImg)
			}
			if blk := MustVirsh(t, b.URI(), "domblklist", name); !strings.Contains(blk, dstImg) {
				t.Errorf("destination guest does not use its copy:\n%s", blk)
			}
			MustVirsh(t, b.URI(), "destroy", name)
		})
	}
}

// TestMigrateCopyStorageChoicesAndAbort: --migrate-disks copies only the
// named disk (the other one is shared: the same path on both hosts);
// domjobabort during the disk copy (slowed by --bandwidth) fails the
// migration, the guest runs on the source on its untouched disk, and the
// image the destination created is gone; a fault injected once the
// mirrors are in sync (perform-nbd-copy) ends the same way.
func TestMigrateCopyStorageChoicesAndAbort(t *testing.T) {
	deps.Require(t, "virsh", "qemu-system-x86_64", "qemu-img")
	t.Run("migrate-disks", func(t *testing.T) {
		t.Parallel()
		a := StartHost(t, HostOptions{Name: "md-a"})
		b := StartHost(t, HostOptions{Name: "md-b"})
		shared := filepath.Join(t.TempDir(), "shared.qcow2")
		if r := run(t, 30*time.Second, "qemu-img", "create", "-f", "qcow2", shared, "16M"); r.Err != nil {
			t.Fatal(r)
		}
		serial, srcImg, dstImg, dstXML := diskGuest(t, a, b, "md", "raw", 0,
			"<disk type='file' device='disk'><driver name='qemu' type='qcow2' cache='none'/><source file='"+shared+"'/><target dev='vdb' bus='virtio'/></disk>\n")
		before, _ := LastTick(serial)
		r := run(t, 3*time.Minute, "virsh", "-c", a.URI(), "migrate", "--live", "--copy-storage-all", "--migrate-disks", "vda",
			"--unsafe", "--xml", dstXML, "md", b.URI())
		if r.Err != nil {
			t.Fatalf("virsh migrate: %s", r)
		}
		checkMoved(t, a, b, "md", serial, before)
		sameImage(t, srcImg, dstImg)
		blk := MustVirsh(t, b.URI(), "domblklist", "md")
		if !strings.Contains(blk, dstImg) || !strings.Contains(blk, shared) {
			t.Errorf("destination disks:\n%s", blk)
		}
		MustVirsh(t, b.URI(), "destroy", "md")
	})
	t.Run("disks-uri-and-port", func(t *testing.T) {
		// The disks over a unix socket (--disks-uri unix:///…, the hosts
		// share this machine), then over a chosen TCP port
		// (--disks-port), there and back.
		t.Parallel()
		a := StartHost(t, HostOptions{Name: "du-a"})
		b := StartHost(t, HostOptions{Name: "du-b"})
		serial, srcImg, dstImg, dstXML := diskGuest(t, a, b, "du", "raw", 256)
		waitDiskCheck(t, serial, 0, time.Minute)
		sock := filepath.Join(t.TempDir(), "nbd.sock")
		before, _ := LastTick(serial)
		if r := run(t, 3*time.Minute, "virsh", "-c", a.URI(), "migrate", "--live", "--copy-storage-all", "--disks-uri", "unix://"+sock,
			"--xml", dstXML, "du", b.URI()); r.Err != nil {
			t.Fatalf("--disks-uri unix: %s", r)
		}
		checkMoved(t, a, b, "du", serial, before)
		last := waitDiskCheck(t, serial, before.N, time.Minute)
		// And back, the image path swapped again, on a port of our own.
		os.Remove(srcImg)
		mig := MustVirsh(t, b.URI(), "dumpxml", "--migratable", "du")
		back := filepath.Join(t.TempDir(), "back.xml")
		os.WriteFile(back, []byte(strings.ReplaceAll(mig, dstImg, srcImg)), 0o644)
		port := freePort(t, a.Addr)
		before, _ = LastTick(serial)
		if r := run(t, 3*time.Minute, "virsh", "-c", b.URI(), "migrate", "--live", "--copy-storage-all", "--disks-port", fmt.Sprint(port),
			"--xml", back, "du", a.URI()); r.Err != nil {
			t.Fatalf("--disks-port: %s", r)
		}
		checkMoved(t, b, a, "du", serial, before)
		waitDiskCheck(t, serial, last.N, time.Minute)
		if r := Virsh(t, a.URI(), "migrate", "--live", "--copy-storage-all", "--disks-uri", "ftp://x", "du", b.URI()); r.Err == nil || !strings.Contains(r.Stderr, "Unsupported scheme in disks URI: ftp") {
			t.Errorf("--disks-uri ftp: %s", r)
		}
		MustVirsh(t, a.URI(), "destroy", "du")
	})
	t.Run("domjobabort", func(t *testing.T) {
		t.Parallel()
		a := StartHost(t, HostOptions{Name: "ja-a"})
		b := StartHost(t, HostOptions{Name: "ja-b"})
		serial, srcImg, dstImg, dstXML := diskGuest(t, a, b, "ja", "raw", 0)
		orig := filepath.Join(t.TempDir(), "orig.raw")
		if r := run(t, time.Minute, "qemu-img", "convert", "-U", "-f", "raw", "-O", "raw", srcImg, orig); r.Err != nil {
			t.Fatal(r)
		}
		done := make(chan Result, 1)
		go func() {
			done <- run(t, 3*time.Minute, "virsh", "-c", a.URI(), "migrate", "--live", "--copy-storage-all", "--bandwidth", "1",
				"--xml", dstXML, "ja", b.URI())
		}()
		// Abort once the disk copy shows progress.
		deadline := time.Now().Add(time.Minute)
		for {
			ji := Virsh(t, a.URI(), "domjobinfo", "ja").Stdout
			if strings.Contains(ji, "File processed:") && !strings.Contains(ji, "File processed:   0.000 B") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no disk copy progress in domjobinfo:\n%s", ji)
			}
			time.Sleep(200 * time.Millisecond)
		}
		MustVirsh(t, a.URI(), "domjobabort", "ja")
		r := <-done
		if r.Err == nil || !strings.Contains(r.Stderr, "operation aborted") {
			t.Fatalf("virsh migrate after domjobabort: %s", r)
		}
		if st := domstate(t, a, "ja"); !strings.HasPrefix(st, "running") {
			t.Fatalf("source after the abort: %q", st)
		}
		WaitTicks(t, serial, 0, 30*time.Second)
		if out := MustVirsh(t, b.URI(), "list", "--all", "--name"); strings.Contains(out, "ja") {
			t.Errorf("destination still has the domain:\n%s", out)
		}
		if _, err := os.Stat(dstImg); !os.IsNotExist(err) {
			t.Errorf("the image the destination created is still there: %v", err)
		}
		sameImage(t, orig, srcImg)
		MustVirsh(t, a.URI(), "destroy", "ja")
	})
	for _, f := range []struct {
		point, action string
		onDest        bool
	}{
		{"perform-nbd-copy", "error", false},
		{"perform-nbd-copy", "exit-daemon", false},
		{"prepare-end", "error", true},
		{"finish", "error", true},
	} {
		t.Run("fault-"+f.point+"-"+f.action, func(t *testing.T) {
			t.Parallel()
			fault := fmt.Sprintf("fault_injection = [ %q ]\n", f.point+":"+f.action)
			var aOpts, bOpts HostOptions
			if f.onDest {
				bOpts.Extra = fault
			} else {
				aOpts.Extra = fault
			}
			aOpts.Name, bOpts.Name = "nf-a", "nf-b"
			a := StartHost(t, aOpts)
			b := StartHost(t, bOpts)
			action := f.action
			serial, _, dstImg, dstXML := diskGuest(t, a, b, "nf", "qcow2", 256)
			waitDiskCheck(t, serial, 0, time.Minute)
			r := run(t, 3*time.Minute, "virsh", "-c", a.URI(), "migrate", "--live", "--copy-storage-all", "--xml", dstXML, "nf", b.URI())
			if r.Err == nil {
				t.Fatalf("migration succeeded despite the fault")
			}
			if action == "exit-daemon" {
				if !a.WaitExit(30 * time.Second) {
					t.Fatal("the source daemon did not exit at the fault")
				}
				a.RemoveFaults()
				a.Restart()
			}
			// Exactly one guest: on the source, writing its disk on.
			deadline := time.Now().Add(90 * time.Second)
			for !strings.HasPrefix(stateOf(t, a, "nf"), "running") || len(b.QEMUPids()) != 0 {
				if time.Now().After(deadline) {
					t.Fatalf("after the fault: source %q, destination QEMUs %v", stateOf(t, a, "nf"), b.QEMUPids())
				}
				time.Sleep(300 * time.Millisecond)
			}
			last, _ := LastTick(serial)
			waitDiskCheck(t, serial, last.N, time.Minute)
			if _, err := os.Stat(dstImg); !os.IsNotExist(err) {
				t.Errorf("the image the destination created is still there: %v", err)
			}
			MustVirsh(t, a.URI(), "destroy", "nf")
		})
	}
}

// TestMigrateCopyStorageIncremental: a qcow2 disk on a backing file that
// both hosts have (the same base image path), --copy-storage-inc copies
// only the top image: the destination's top (created beforehand on the
// same base, as libvirt requires for -inc) gets everything the guest
// wrote, the base stays untouched, and the guest reads back every block.
// The guest starts with its chain probed like libvirt's: the live XML
// shows it.
func TestMigrateCopyStorageIncremental(t *testing.T) {
	deps.Require(t, "virsh", "qemu-system-x86_64", "qemu-img")
	t.Parallel()
	a := StartHost(t, HostOptions{Name: "inc-a"})
	b := StartHost(t, HostOptions{Name: "inc-b"})
	base := filepath.Join(t.TempDir(), "base.qcow2")
	raw := filepath.Join(t.TempDir(), "base.raw")
	data := make([]byte, 16<<20)
	rand.Read(data[8<<20 : 12<<20]) // data the guest does not overwrite
	os.WriteFile(raw, data, 0o644)
	if r := run(t, time.Minute, "qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, base); r.Err != nil {
		t.Fatal(r)
	}
	baseSum := fileSum(t, base)
	srcTop, dstTop := filepath.Join(a.Dir, "top.qcow2"), filepath.Join(b.Dir, "top.qcow2")
	for _, top := range []string{srcTop, dstTop} {
		if r := run(t, time.Minute, "qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", top); r.Err != nil {
			t.Fatal(r)
		}
	}
	serial := filepath.Join(a.Dir, "inc.serial")
	disk := "<disk type='file' device='disk'><driver name='qemu' type='qcow2' cache='none'/><source file='" + srcTop + "'/><target dev='vda' bus='virtio'/></disk>\n"
	xml := strings.Replace(GuestXML(t, GuestOptions{Name: "inc", Serial: serial}), "<devices>\n", "<devices>\n    "+disk, 1)
	xml = strings.Replace(xml, "tick_ms=200", "tick_ms=200 disk_blocks=512 disk_rate=8", 1)
	p := filepath.Join(a.Dir, "inc.xml")
	os.WriteFile(p, []byte(xml), 0o644)
	MustVirsh(t, a.URI(), "define", p)
	MustVirsh(t, a.URI(), "start", "inc")
	live := MustVirsh(t, a.URI(), "dumpxml", "inc")
	if !strings.Contains(live, "<backingStore type='file' index='2'>") || !strings.Contains(live, "<source file='"+base+"'/>") {
		t.Fatalf("live XML without the probed backing chain:\n%s", live)
	}
	waitDiskCheck(t, serial, 0, time.Minute)
	before, _ := LastTick(serial)
	mig := MustVirsh(t, a.URI(), "dumpxml", "--migratable", "inc")
	if strings.Contains(mig, base) {
		t.Errorf("migratable XML carries the probed chain (libvirt leaves it out):\n%s", mig)
	}
	dstXML := filepath.Join(a.Dir, "inc-dst.xml")
	os.WriteFile(dstXML, []byte(strings.ReplaceAll(mig, srcTop, dstTop)), 0o644)
	if r := run(t, 3*time.Minute, "virsh", "-c", a.URI(), "migrate", "--live", "--copy-storage-inc", "--unsafe", "--xml", dstXML, "inc", b.URI()); r.Err != nil {
		t.Fatalf("virsh migrate: %s", r)
	}
	checkMoved(t, a, b, "inc", serial, before)
	last := waitDiskCheck(t, serial, before.N, time.Minute)
	waitDiskCheck(t, serial, last.N, time.Minute)
	if dl := MustVirsh(t, b.URI(), "dumpxml", "inc"); !strings.Contains(dl, "<source file='"+dstTop+"' index='1'/>") || !strings.Contains(dl, "<source file='"+base+"'/>") {
		t.Errorf("destination live XML:\n%s", dl)
	}
	MustVirsh(t, b.URI(), "destroy", "inc")
	if fileSum(t, base) != baseSum {
		t.Errorf("the shared base image changed")
	}
	// The base's data shows through the destination's top.
	if r := run(t, time.Minute, "qemu-img", "compare", "-U", raw, dstTop); r.Err == nil {
		t.Errorf("the destination disk equals the untouched base: the guest's writes are missing")
	}
	chk := filepath.Join(t.TempDir(), "dst.raw")
	if r := run(t, time.Minute, "qemu-img", "convert", "-U", "-O", "raw", dstTop, chk); r.Err != nil {
		t.Fatal(r)
	}
	got, _ := os.ReadFile(chk)
	if len(got) != len(data) || string(got[8<<20:12<<20]) != string(data[8<<20:12<<20]) {
		t.Errorf("the base's data does not show through the destination's image")
	}
}
