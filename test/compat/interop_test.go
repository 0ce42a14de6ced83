package compat_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/govirtd/govirtd/test/deps"
)

// Interoperability with a real libvirtd 9.0 (Debian's): a guest moves
// between govirtd and libvirtd, both directions, client-managed and
// peer-to-peer (each daemon driving the other), disk-less and with a shared
// qcow2 disk, and keeps running: its counter continues from the same boot
// and its memory check stays clean.

// interopGuest defines and starts the test guest on the host at uri.
func interopGuest(t *testing.T, uri, name, dir string, disk string) (serial string) {
	t.Helper()
	serial = filepath.Join(dir, name+".serial")
	xml := GuestXML(t, GuestOptions{Name: name, Serial: serial, DirtyMB: 16, DirtyRate: 4})
	if disk != "" {
		xml = strings.Replace(xml, "<devices>", "<devices>\n    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='"+disk+"'/><target dev='vda' bus='virtio'/></disk>", 1)
	}
	p := filepath.Join(dir, name+".xml")
	os.WriteFile(p, []byte(xml), 0o644)
	MustVirsh(t, uri, "define", p)
	MustVirsh(t, uri, "start", name)
	WaitTicks(t, serial, 2, 90*time.Second)
	return serial
}

// moveAndCheck migrates name from one URI to another and checks it moved.
func moveAndCheck(t *testing.T, from, to, name, serial string, args ...string) {
	t.Helper()
	before, _ := LastTick(serial)
	argv := append([]string{"-c", from, "migrate", "--live"}, args...)
	argv = append(argv, name, to)
	if r := run(t, 3*time.Minute, "virsh", argv...); r.Err != nil {
		t.Fatalf("virsh %s: %s", strings.Join(argv, " "), r)
	}
	if !runningOn(t, to, name) {
		t.Fatalf("%s not running on %s after migration", name, to)
	}
	if runningOn(t, from, name) {
		t.Fatalf("%s still running on the source %s", name, from)
	}
	after, ok := waitTicks(serial, before.N+3, 90*time.Second)
	if !ok {
		logStuckGuest(t, to, name)
		data, _ := os.ReadFile(serial)
		t.Fatalf("after %s -> %s the guest did not tick past %d within 90s; serial log:\n%s", from, to, before.N+3, tail(string(data), 20))
	}
	if after.BootID != before.BootID || after.Mism != 0 {
		t.Fatalf("after %s -> %s: boot %s (was %s), %d mismatches", from, to, after.BootID, before.BootID, after.Mism)
	}
	// The completed job's statistics, where the domain is still known: on
	// the source if it stays defined there, and on the destination.
	hosts := []string{from, to}
	if slices.Contains(args, "--postcopy") {
		// libvirtd 9.0 keeps no completed job on a post-copy destination.
		hosts = hosts[:1]
	}
	for _, uri := range hosts {
		if Virsh(t, uri, "dominfo", name).Err != nil {
			continue
		}
		if ji := MustVirsh(t, uri, "domjobinfo", "--completed", name); !strings.Contains(ji, "Completed") {
			t.Errorf("domjobinfo --completed on %s:\n%s", uri, ji)
		}
	}
}

// TestInteropLibvirtd: the eight directions x modes x kinds.
func TestInteropLibvirtd(t *testing.T) {
	requireLibvirtd(t)
	t.Run("diskless-from-govirtd", func(t *testing.T) {
		t.Parallel()
		g := StartHost(t, HostOptions{Name: "ig-g"})
		l := StartLibvirtd(t, "ig-l")
		serial := interopGuest(t, g.URI(), "idl", g.Dir, "")
		moveAndCheck(t, g.URI(), l.URI(), "idl", serial)          // govirtd -> libvirtd, managed
		moveAndCheck(t, l.URI(), g.URI(), "idl", serial)          // libvirtd -> govirtd, managed
		moveAndCheck(t, g.URI(), l.URI(), "idl", serial, "--p2p") // govirtd drives libvirtd
		moveAndCheck(t, l.URI(), g.URI(), "idl", serial, "--p2p") // libvirtd drives govirtd
	})
	t.Run("copy-storage", func(t *testing.T) {
		// --copy-storage-all both ways, managed and p2p: the NBD
		// protocol between the daemons is libvirt's. The guest writes its
		// disk all along and re-reads it. libvirtd precreates images only
		// in storage pools, so its copy is created beforehand, as libvirt
		// requires; govirtd creates its own.
		t.Parallel()
		deps.Require(t, "qemu-img")
		g := StartHost(t, HostOptions{Name: "ic-g"})
		l := StartLibvirtd(t, "ic-l")
		gImg, lImg := filepath.Join(g.Dir, "ics.qcow2"), filepath.Join(l.Dir, "ics.qcow2")
		if r := run(t, 30*time.Second, "qemu-img", "create", "-f", "qcow2", gImg, "32M"); r.Err != nil {
			t.Fatal(r)
		}
		serial := filepath.Join(g.Dir, "ics.serial")
		xml := GuestXML(t, GuestOptions{Name: "ics", Serial: serial})
		xml = strings.Replace(xml, "<devices>", "<devices>\n    <disk type='file' device='disk'><driver name='qemu' type='qcow2' cache='none'/><source file='"+gImg+"'/><target dev='vda' bus='virtio'/></disk>", 1)
		xml = strings.Replace(xml, "tick_ms=200", "tick_ms=200 disk_blocks=1024 disk_rate=8", 1)
		p := filepath.Join(g.Dir, "ics.xml")
		os.WriteFile(p, []byte(xml), 0o644)
		MustVirsh(t, g.URI(), "define", p)
		MustVirsh(t, g.URI(), "start", "ics")
		WaitTicks(t, serial, 2, 90*time.Second)
		waitDiskCheck(t, serial, 0, 90*time.Second)
		move := func(from, to string, fromImg, toImg string, toLibvirtd bool, args ...string) {
			t.Helper()
			os.Remove(toImg)
			if toLibvirtd {
				if r := run(t, 30*time.Second, "qemu-img", "create", "-f", "qcow2", toImg, "32M"); r.Err != nil {
					t.Fatal(r)
				}
			}
			mig := MustVirsh(t, from, "dumpxml", "--migratable", "ics")
			dst := filepath.Join(t.TempDir(), "dst.xml")
			os.WriteFile(dst, []byte(strings.ReplaceAll(mig, fromImg, toImg)), 0o644)
			moveAndCheck(t, from, to, "ics", serial, append([]string{"--copy-storage-all", "--xml", dst}, args...)...)
			last, _ := LastTick(serial)
			waitDiskCheck(t, serial, last.N, 90*time.Second)
		}
		move(g.URI(), l.URI(), gImg, lImg, true)
		move(l.URI(), g.URI(), lImg, gImg, false)
		move(g.URI(), l.URI(), gImg, lImg, true, "--p2p")
		move(l.URI(), g.URI(), lImg, gImg, false, "--p2p")
	})
	t.Run("compressed-and-parallel", func(t *testing.T) {
		// xbzrle compression and multifd set up alike on both daemons:
		// each side must turn on what the other expects.
		t.Parallel()
		g := StartHost(t, HostOptions{Name: "it-g"})
		l := StartLibvirtd(t, "it-l")
		serial := interopGuest(t, g.URI(), "itc", g.Dir, "")
		moveAndCheck(t, g.URI(), l.URI(), "itc", serial, "--compressed")
		moveAndCheck(t, l.URI(), g.URI(), "itc", serial, "--compressed")
		moveAndCheck(t, g.URI(), l.URI(), "itc", serial, "--parallel", "--parallel-connections", "3")
		moveAndCheck(t, l.URI(), g.URI(), "itc", serial, "--parallel", "--parallel-connections", "3")
		moveAndCheck(t, g.URI(), l.URI(), "itc", serial, "--parallel", "--p2p")
		moveAndCheck(t, l.URI(), g.URI(), "itc", serial, "--parallel", "--p2p")
	})
	t.Run("postcopy-and-auto-converge", func(t *testing.T) {
		// A guest that does not converge at --bandwidth 8 gets across by
		// post-copy (virsh switches after the first pass) in all four
		// directions and modes; auto-converge, both ways, on a guest that
		// converges. Each daemon must enable postcopy-ram as the other
		// expects and hand over the guest at the switch.
		t.Parallel()
		g := StartHost(t, HostOptions{Name: "ipc-g"})
		l := StartLibvirtd(t, "ipc-l")
		serial := filepath.Join(g.Dir, "ipc.serial")
		o := nonConverging
		o.Name, o.Serial = "ipc", serial
		p := filepath.Join(g.Dir, "ipc.xml")
		os.WriteFile(p, []byte(GuestXML(t, o)), 0o644)
		MustVirsh(t, g.URI(), "define", p)
		MustVirsh(t, g.URI(), "start", "ipc")
		WaitTicks(t, serial, 2, 90*time.Second)
		pc := []string{"--postcopy", "--postcopy-after-precopy", "--bandwidth", "8"}
		moveAndCheck(t, g.URI(), l.URI(), "ipc", serial, pc...)
		moveAndCheck(t, l.URI(), g.URI(), "ipc", serial, pc...)
		moveAndCheck(t, g.URI(), l.URI(), "ipc", serial, append([]string{"--p2p"}, pc...)...)
		moveAndCheck(t, l.URI(), g.URI(), "ipc", serial, append([]string{"--p2p"}, pc...)...)
		ac := interopGuest(t, g.URI(), "iac", g.Dir, "")
		moveAndCheck(t, g.URI(), l.URI(), "iac", ac, "--auto-converge")
		moveAndCheck(t, l.URI(), g.URI(), "iac", ac, "--auto-converge", "--p2p")
	})
	t.Run("tls", func(t *testing.T) {
		// --tls both ways: each daemon sets up QEMU's TLS as the other
		// expects, with the same x509 directory in qemu.conf.
		t.Parallel()
		pki, certs := t.TempDir(), t.TempDir()
		conf := fmt.Sprintf("migrate_tls_x509_cert_dir = %q\n", certs)
		g := StartHost(t, HostOptions{Name: "itl-g", QemuConf: conf})
		l := StartLibvirtdWith(t, "itl-l", conf)
		makePKI(t, pki, g.Addr, l.Addr)
		qemuTLSDir(t, certs, filepath.Join(pki, "cacert.pem"), pki)
		serial := interopGuest(t, g.URI(), "itls", g.Dir, "")
		moveAndCheck(t, g.URI(), l.URI(), "itls", serial, "--tls")
		moveAndCheck(t, l.URI(), g.URI(), "itls", serial, "--tls")
		moveAndCheck(t, g.URI(), l.URI(), "itls", serial, "--tls", "--p2p")
		moveAndCheck(t, l.URI(), g.URI(), "itls", serial, "--tls", "--p2p")
	})
	t.Run("shared-disk-from-libvirtd", func(t *testing.T) {
		t.Parallel()
		deps.Require(t, "qemu-img")
		g := StartHost(t, HostOptions{Name: "is-g"})
		l := StartLibvirtd(t, "is-l")
		disk := filepath.Join(t.TempDir(), "shared.qcow2")
		if r := run(t, 30*time.Second, "qemu-img", "create", "-f", "qcow2", disk, "32M"); r.Err != nil {
			t.Fatal(r)
		}
		// Started by libvirtd itself, with libvirt's own defaults and
		// command line. Both hosts see the same path, but on a local
		// filesystem, which libvirt (and govirtd) call unsafe: --unsafe.
		serial := interopGuest(t, l.URI(), "isd", t.TempDir(), disk)
		moveAndCheck(t, l.URI(), g.URI(), "isd", serial, "--unsafe")
		moveAndCheck(t, g.URI(), l.URI(), "isd", serial, "--unsafe")
		moveAndCheck(t, l.URI(), g.URI(), "isd", serial, "--unsafe", "--p2p")
		moveAndCheck(t, g.URI(), l.URI(), "isd", serial, "--unsafe", "--p2p")
	})
	t.Run("virt-install-defaults", func(t *testing.T) {
		// virt-install's default devices (SPICE, QXL, HDA sound, spicevmc
		// channel, USB redirection, ICH9 USB2) cross in both directions.
		// --virt-type qemu: this machine's KVM cannot run a guest.
		t.Parallel()
		deps.Require(t, "virt-install")
		kernel, initrd := testGuest(t)
		g := StartHost(t, HostOptions{Name: "iv-g"})
		l := StartLibvirtd(t, "iv-l")
		serial := filepath.Join(g.Dir, "ivd.serial")
		r := run(t, 2*time.Minute, "virt-install", "--connect", g.URI(),
			"--import", "--name", "ivd", "--virt-type", "qemu", "--memory", "128", "--disk", "none", "--network", "user",
			"--osinfo", "detect=on,require=off", "--serial", "file,path="+serial,
			"--boot", "kernel="+kernel+",initrd="+initrd+",kernel_args=console=ttyS0 quiet cryptomgr.notests pti=on tick_ms=200",
			"--noautoconsole")
		if r.Err != nil {
			t.Fatalf("virt-install: %s", r)
		}
		WaitTicks(t, serial, 2, 90*time.Second)
		moveAndCheck(t, g.URI(), l.URI(), "ivd", serial)
		moveAndCheck(t, l.URI(), g.URI(), "ivd", serial)
		moveAndCheck(t, g.URI(), l.URI(), "ivd", serial, "--p2p")
		moveAndCheck(t, l.URI(), g.URI(), "ivd", serial, "--p2p")
	})
	t.Run("persistent-undefinesource", func(t *testing.T) {
		t.Parallel()
		g := StartHost(t, HostOptions{Name: "ip-g"})
		l := StartLibvirtd(t, "ip-l")
		serial := interopGuest(t, g.URI(), "ipu", g.Dir, "")
		moveAndCheck(t, g.URI(), l.URI(), "ipu", serial, "--persistent", "--undefinesource")
		if out := MustVirsh(t, g.URI(), "list", "--all", "--name"); strings.Contains(out, "ipu") {
			t.Errorf("govirtd kept the definition after --undefinesource:\n%s", out)
		}
		if info := MustVirsh(t, l.URI(), "dominfo", "ipu"); !strings.Contains(info, "Persistent:     yes") {
			t.Errorf("libvirtd did not make it persistent:\n%s", info)
		}
		moveAndCheck(t, l.URI(), g.URI(), "ipu", serial, "--persistent", "--undefinesource", "--p2p")
		if info := MustVirsh(t, g.URI(), "dominfo", "ipu"); !strings.Contains(info, "Persistent:     yes") {
			t.Errorf("govirtd did not make it persistent:\n%s", info)
		}
		if out := MustVirsh(t, l.URI(), "list", "--all", "--name"); strings.Contains(out, "ipu") {
			t.Errorf("libvirtd kept the definition after --undefinesource:\n%s", out)
		}
	})
}

// TestInteropMoreOptions: tunnelled p2p both ways, --offline --persistent,
// --suspend with --dname.
func TestInteropMoreOptions(t *testing.T) {
	requireLibvirtd(t)
	g := StartHost(t, HostOptions{Name: "io-g"})
	l := StartLibvirtd(t, "io-l")
	serial := interopGuest(t, g.URI(), "iot", g.Dir, "")
	moveAndCheck(t, g.URI(), l.URI(), "iot", serial, "--p2p", "--tunnelled")
	moveAndCheck(t, l.URI(), g.URI(), "iot", serial, "--p2p", "--tunnelled")

	// Offline: the definition only, both ways.
	if r := run(t, time.Minute, "virsh", "-c", g.URI(), "migrate", "--offline", "--persistent", "iot", l.URI()); r.Err != nil {
		t.Fatalf("offline govirtd -> libvirtd: %s", r)
	}
	if st := strings.TrimSpace(MustVirsh(t, l.URI(), "domstate", "iot")); st != "shut off" {
		t.Errorf("offline copy on libvirtd: %q", st)
	}
	MustVirsh(t, l.URI(), "undefine", "iot")

	// --suspend --dname: paused under a new name on libvirtd, resumed.
	before, _ := LastTick(serial)
	if r := run(t, 2*time.Minute, "virsh", "-c", g.URI(), "migrate", "--live", "--suspend", "--dname", "iot2", "iot", l.URI()); r.Err != nil {
		t.Fatalf("--suspend --dname govirtd -> libvirtd: %s", r)
	}
	if st := strings.TrimSpace(MustVirsh(t, l.URI(), "domstate", "iot2")); st != "paused" {
		t.Errorf("--suspend on libvirtd: %q", st)
	}
	MustVirsh(t, l.URI(), "resume", "iot2")
	after := WaitTicks(t, serial, before.N+3, 60*time.Second)
	if after.BootID != before.BootID || after.Mism != 0 {
		t.Fatalf("after --suspend --dname: boot %s (was %s), %d mismatches", after.BootID, before.BootID, after.Mism)
	}
	// And back under its old name, suspended on govirtd.
	before = after
	if r := run(t, 2*time.Minute, "virsh", "-c", l.URI(), "migrate", "--live", "--suspend", "--dname", "iot", "iot2", g.URI()); r.Err != nil {
		t.Fatalf("--suspend --dname libvirtd -> govirtd: %s", r)
	}
	if st := domstate(t, g, "iot"); st != "paused (user)" {
		t.Errorf("--suspend on govirtd: %q", st)
	}
	MustVirsh(t, g.URI(), "resume", "iot")
	after = WaitTicks(t, serial, before.N+3, 60*time.Second)
	if after.BootID != before.BootID || after.Mism != 0 {
		t.Fatalf("back on govirtd: boot %s (was %s), %d mismatches", after.BootID, before.BootID, after.Mism)
	}
}

// TestInteropFaults: a failure injected on the govirtd side of a
// migration with libvirtd leaves exactly one running guest.
func TestInteropFaults(t *testing.T) {
	requireLibvirtd(t)
	cases := []struct {
		fault     string
		toGovirtd bool   // direction: libvirtd -> govirtd (govirtd is the destination)
		want      string // where the guest runs afterwards: "g" or "l"
	}{
		{"prepare:error", true, "l"},
		{"finish:error", true, "l"},
		{"confirm:error", false, "l"},
	}
	for _, c := range cases {
		t.Run(c.fault, func(t *testing.T) {
			t.Parallel()
			g := StartHost(t, HostOptions{Name: "if-g", Extra: "fault_injection = [ \"" + c.fault + "\" ]\n"})
			l := StartLibvirtd(t, "if-l")
			src, dst := g.URI(), l.URI()
			var serial string
			if c.toGovirtd {
				src, dst = l.URI(), g.URI()
				serial = interopGuest(t, src, "ifg", t.TempDir(), "")
			} else {
				serial = interopGuest(t, src, "ifg", g.Dir, "")
			}
			before, _ := LastTick(serial)
			r := run(t, 3*time.Minute, "virsh", "-c", src, "migrate", "--live", "ifg", dst)
			t.Logf("virsh migrate: %v %s", r.Err, strings.TrimSpace(r.Stderr))
			deadline := time.Now().Add(30 * time.Second)
			for {
				gRun, lRun := runningOn(t, g.URI(), "ifg"), runningOn(t, l.URI(), "ifg")
				if gRun && lRun {
					t.Fatal("the guest runs on both govirtd and libvirtd")
				}
				if (c.want == "g" && gRun) || (c.want == "l" && lRun) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("guest running on govirtd=%v libvirtd=%v, want %s", gRun, lRun, c.want)
				}
				time.Sleep(300 * time.Millisecond)
			}
			after := WaitTicks(t, serial, before.N+2, 60*time.Second)
			if after.BootID != before.BootID || after.Mism != 0 {
				t.Fatalf("guest after the fault: boot %s (was %s), %d mismatches", after.BootID, before.BootID, after.Mism)
			}
		})
	}
}
