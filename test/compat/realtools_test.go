package compat_test

import (
	"bufio"
	"context"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/govirtd/govirtd/test/deps"
)

// Guests defined the way real tools define them: virt-install with its
// defaults (ICH9 USB2 controllers, a SPICE display with QXL video, HDA
// sound, a spicevmc channel and USB redirection; on q35 also a guest agent
// channel and an RNG), virt-clone's copy, and go-libvirt's integration
// fixture, all with real virsh against the real daemon.

// liveDomain is the part of `virsh dumpxml` these tests read.
type liveDomain struct {
	Devices struct {
		Consoles []struct {
			TTY string `xml:"tty,attr"`
		} `xml:"console"`
		Graphics []struct {
			Type     string `xml:"type,attr"`
			Port     int    `xml:"port,attr"`
			AutoPort string `xml:"autoport,attr"`
			Listen   string `xml:"listen,attr"`
		} `xml:"graphics"`
		Channels []struct {
			Type   string `xml:"type,attr"`
			Source struct {
				Path string `xml:"path,attr"`
			} `xml:"source"`
			Target struct {
				Name  string `xml:"name,attr"`
				State string `xml:"state,attr"`
			} `xml:"target"`
		} `xml:"channel"`
		Controllers []struct {
			Type  string `xml:"type,attr"`
			Model string `xml:"model,attr"`
		} `xml:"controller"`
		Sounds []struct {
			Model string `xml:"model,attr"`
		} `xml:"sound"`
		RNGs []struct {
			Model string `xml:"model,attr"`
		} `xml:"rng"`
	} `xml:"devices"`
}

func dumpLive(t *testing.T, uri, name string) liveDomain {
	t.Helper()
	var d liveDomain
	if err := xml.Unmarshal([]byte(MustVirsh(t, uri, "dumpxml", name)), &d); err != nil {
		t.Fatalf("parse live XML of %s: %v", name, err)
	}
	return d
}

// ptyTicks reads the guest's serial console from its pty (the console
// virt-install gives it) until the guest ticked past beyond.
func ptyTicks(t *testing.T, tty string, beyond int, timeout time.Duration) Tick {
	t.Helper()
	if !strings.HasPrefix(tty, "/dev/pts/") {
		t.Fatalf("console tty %q is not a pty", tty)
	}
	f, err := os.OpenFile(tty, os.O_RDONLY|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open console %s: %v", tty, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	go func() { <-ctx.Done(); f.Close() }()
	sc := bufio.NewScanner(f)
	var last []string
	for sc.Scan() {
		line := sc.Text()
		last = append(last, line)
		if len(last) > 10 {
			last = last[1:]
		}
		if m := tickLine.FindStringSubmatch(line); m != nil {
			n, _ := strconv.Atoi(m[2])
			if n > beyond {
				mism, _ := strconv.Atoi(m[3])
				return Tick{BootID: m[1], N: n, Mism: mism}
			}
		}
	}
	t.Fatalf("no guest tick past %d on %s within %v; last lines:\n%s", beyond, tty, timeout, strings.Join(last, "\n"))
	return Tick{}
}

func TestVirtInstallDefaults(t *testing.T) {
	deps.Require(t, "virt-install", "virt-clone", "virsh")
	kernel, initrd := testGuest(t)
	a := StartHost(t, HostOptions{})
	b := StartHost(t, HostOptions{})
	args := "console=ttyS0 quiet cryptomgr.notests pti=on tick_ms=200"

	for _, machine := range []string{"pc", "q35"} {
		t.Run(machine, func(t *testing.T) {
			name := "vi-" + machine
			// No flag works around a device: --network user only because
			// virt-install's default NIC needs the libvirt network
			// 'default', which a host outside a network namespace of its
			// own does not define (TestVirtInstallNetworkDefault has it),
			// --machine picks the machine under test, and --virt-type
			// qemu because this machine's /dev/kvm opens but cannot run
			// a guest (KVM "emulation failure"), with libvirtd as here.
			r := run(t, 2*time.Minute, "virt-install", "--connect", a.URI(),
				"--import", "--name", name, "--virt-type", "qemu", "--memory", "128", "--vcpus", "1",
				"--machine", machine, "--disk", "none", "--network", "user",
				"--osinfo", "detect=on,require=off",
				"--boot", "kernel="+kernel+",initrd="+initrd+",kernel_args="+args,
				"--noautoconsole")
			if r.Err != nil {
				t.Fatalf("virt-install: %s", r)
			}
			t.Cleanup(func() {
				Virsh(t, a.URI(), "destroy", name)
				Virsh(t, a.URI(), "undefine", name)
				Virsh(t, b.URI(), "destroy", name)
			})
			live := dumpLive(t, a.URI(), name)
			if len(live.Devices.Graphics) != 1 || live.Devices.Graphics[0].Type != "spice" {
				t.Fatalf("graphics %+v, want virt-install's default SPICE display", live.Devices.Graphics)
			}
			g := live.Devices.Graphics[0]
			if g.AutoPort != "yes" || g.Port < 5900 || g.Listen != a.Addr {
				t.Errorf("SPICE display %+v: want an allocated port >= 5900 listening on %s", g, a.Addr)
			}
			var spiceChannel bool
			for _, ch := range live.Devices.Channels {
				if ch.Target.Name == "com.redhat.spice.0" && ch.Type == "spicevmc" && ch.Target.State == "disconnected" {
					spiceChannel = true
				}
				if ch.Type == "unix" {
					if _, err := os.Stat(ch.Source.Path); err != nil {
						t.Errorf("channel %s socket: %v", ch.Target.Name, err)
					}
				}
			}
			if !spiceChannel {
				t.Errorf("channels %+v: want the spicevmc vdagent channel", live.Devices.Channels)
			}
			if len(live.Devices.Sounds) != 1 {
				t.Errorf("sound cards %+v, want virt-install's one", live.Devices.Sounds)
			}
			tk := ptyTicks(t, live.Devices.Consoles[0].TTY, 2, 90*time.Second)

			// The guest migrates with all of it, keeps running and keeps
			// its display on the destination's own port.
			r = Virsh(t, a.URI(), "migrate", "--live", name, b.URI())
			if r.Err != nil {
				t.Fatalf("migrate: %s", r)
			}
			bl := dumpLive(t, b.URI(), name)
			after := ptyTicks(t, bl.Devices.Consoles[0].TTY, tk.N, 60*time.Second)
			if after.BootID != tk.BootID || after.Mism != 0 {
				t.Fatalf("after migration tick %+v, want boot %s continuing with no memory mismatch", after, tk.BootID)
			}
			if bg := bl.Devices.Graphics[0]; bg.Listen != b.Addr || bg.Port < 5900 {
				t.Errorf("destination display %+v, want a port of its own on %s", bg, b.Addr)
			}
			if st := strings.TrimSpace(MustVirsh(t, a.URI(), "domstate", name)); st != "shut off" {
				t.Errorf("source state %q after migration, want shut off", st)
			}
			MustVirsh(t, b.URI(), "destroy", name)
		})
	}

	t.Run("virt-clone", func(t *testing.T) {
		name := "vi-orig"
		r := run(t, 2*time.Minute, "virt-install", "--connect", a.URI(),
			"--import", "--name", name, "--virt-type", "qemu", "--memory", "128", "--disk", "none", "--network", "user",
			"--graphics", "vnc", "--osinfo", "detect=on,require=off",
			"--boot", "kernel="+kernel+",initrd="+initrd+",kernel_args="+args,
			"--noautoconsole", "--noreboot")
		if r.Err != nil {
			t.Fatalf("virt-install: %s", r)
		}
		t.Cleanup(func() {
			for _, n := range []string{name, name + "-clone"} {
				Virsh(t, a.URI(), "destroy", n)
				Virsh(t, a.URI(), "undefine", n)
			}
		})
		if r := run(t, time.Minute, "virt-clone", "--connect", a.URI(), "--original", name, "--auto-clone"); r.Err != nil {
			t.Fatalf("virt-clone: %s", r)
		}
		clone := name + "-clone"
		MustVirsh(t, a.URI(), "start", clone)
		live := dumpLive(t, a.URI(), clone)
		if g := live.Devices.Graphics; len(g) != 1 || g[0].Type != "vnc" || g[0].Port < 5900 {
			t.Errorf("clone graphics %+v, want VNC on an allocated port", g)
		}
		ptyTicks(t, live.Devices.Consoles[0].TTY, 2, 90*time.Second)
		// The original starts beside its clone: each display gets its
		// own port.
		MustVirsh(t, a.URI(), "start", name)
		orig := dumpLive(t, a.URI(), name)
		if orig.Devices.Graphics[0].Port == live.Devices.Graphics[0].Port {
			t.Errorf("original and clone share display port %d", orig.Devices.Graphics[0].Port)
		}
	})
}

// go-libvirt's integration fixture: a 1 MiB guest with a raw virtio disk,
// an empty block cdrom, AC97 sound, cirrus video, VNC and a USB tablet.
func TestGoLibvirtTestDomain(t *testing.T) {
	deps.Require(t, "virsh")
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/digitalocean/go-libvirt").Output()
	if err != nil {
		t.Fatalf("locate go-libvirt: %v", err)
	}
	fixture := filepath.Join(strings.TrimSpace(string(out)), "testdata", "test-domain.xml")
	if _, err := os.Stat(fixture); err != nil {
		t.Fatalf("go-libvirt fixture: %v", err)
	}
	// The fixture's disk lives where go-libvirt's CI puts it.
	const image = "/var/lib/libvirt/images/test.raw"
	if _, err := os.Stat(image); os.IsNotExist(err) {
		if err := os.MkdirAll(filepath.Dir(image), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(image, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(image, 1<<20); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(image) })
	}
	h := StartHost(t, HostOptions{})
	MustVirsh(t, h.URI(), "define", fixture)
	t.Cleanup(func() {
		Virsh(t, h.URI(), "destroy", "test")
		Virsh(t, h.URI(), "undefine", "test")
	})
	MustVirsh(t, h.URI(), "start", "test")
	if st := strings.TrimSpace(MustVirsh(t, h.URI(), "domstate", "test")); st != "running" {
		t.Fatalf("state %q, want running", st)
	}
	live := dumpLive(t, h.URI(), "test")
	if g := live.Devices.Graphics; len(g) != 1 || g[0].Type != "vnc" || g[0].Port < 5900 {
		t.Errorf("graphics %+v, want VNC on an allocated port", g)
	}
	if s := live.Devices.Sounds; len(s) != 1 || s[0].Model != "ac97" {
		t.Errorf("sound %+v, want ac97", s)
	}
	blk := MustVirsh(t, h.URI(), "domblklist", "test")
	if !strings.Contains(blk, "vda") || !strings.Contains(blk, image) || !strings.Contains(blk, "hdc") {
		t.Errorf("domblklist:\n%s\nwant vda on %s and the empty cdrom hdc", blk, image)
	}
}

// The tuning and platform elements real generators write, with their
// effect checked on the running QEMU: pinning on its threads, the disk
// cache mode and IOThread in QEMU's block layer, the guest agent socket.
func TestTuningAndPlatformDevices(t *testing.T) {
	deps.Require(t, "virsh", "qemu-img")
	kernel, initrd := testGuest(t)
	h := StartHost(t, HostOptions{})
	img := filepath.Join(h.Dir, "data.qcow2")
	if r := run(t, time.Minute, "qemu-img", "create", "-q", "-f", "qcow2", img, "16M"); r.Err != nil {
		t.Fatalf("qemu-img: %s", r)
	}
	serial := filepath.Join(h.Dir, "tuned.serial")
	domXML := `<domain type='qemu'>
  <name>tuned</name>
  <memory unit='MiB'>128</memory>
  <memoryBacking><nosharepages/></memoryBacking>
  <vcpu cpuset='0'>2</vcpu>
  <iothreads>2</iothreads>
  <cputune>
    <vcpupin vcpu='1' cpuset='1'/>
    <emulatorpin cpuset='1'/>
  </cputune>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>` + kernel + `</kernel>
    <initrd>` + initrd + `</initrd>
    <cmdline>console=ttyS0 quiet cryptomgr.notests acpi=off pti=on tick_ms=200</cmdline>
  </os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='none' io='native' discard='unmap' detect_zeroes='unmap' error_policy='stop' iothread='2'/>
      <source file='` + img + `'/>
      <target dev='vdb' bus='virtio'/>
    </disk>
    <disk type='file' device='floppy'>
      <target dev='fda' bus='fdc'/>
    </disk>
    <serial type='file'>
      <source path='` + serial + `' append='on'/>
    </serial>
    <channel type='unix'>
      <source mode='bind'/>
      <target type='virtio' name='org.qemu.guest_agent.0'/>
    </channel>
    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>
    <watchdog model='i6300esb' action='reset'/>
    <panic model='isa'/>
  </devices>
</domain>`
	xmlPath := filepath.Join(h.Dir, "tuned.xml")
	if err := os.WriteFile(xmlPath, []byte(domXML), 0o644); err != nil {
		t.Fatal(err)
	}
	MustVirsh(t, h.URI(), "define", xmlPath)
	MustVirsh(t, h.URI(), "start", "tuned")
	t.Cleanup(func() { Virsh(t, h.URI(), "destroy", "tuned") })
	WaitTicks(t, serial, 2, 90*time.Second)

	pids := h.QEMUPids()
	if len(pids) != 1 {
		t.Fatalf("QEMU pids %v, want one", pids)
	}
	// debug-threads=on names vCPU threads "CPU N/TCG".
	tasks, err := os.ReadDir("/proc/" + pids[0] + "/task")
	if err != nil {
		t.Fatal(err)
	}
	var sawVCPU0, sawVCPU1, sawEmulator bool
	for _, task := range tasks {
		dir := "/proc/" + pids[0] + "/task/" + task.Name()
		comm := strings.TrimSpace(readFile(t, dir+"/comm"))
		allowed := ""
		for _, l := range strings.Split(readFile(t, dir+"/status"), "\n") {
			if v, ok := strings.CutPrefix(l, "Cpus_allowed_list:"); ok {
				allowed = strings.TrimSpace(v)
			}
		}
		want := "1" // emulator threads and vCPU 1
		switch comm {
		case "CPU 0/TCG":
			want, sawVCPU0 = "0", true
		case "CPU 1/TCG":
			sawVCPU1 = true
		default:
			sawEmulator = true
		}
		if allowed != want {
			t.Errorf("thread %s (%s) may run on CPUs %q, want %q", task.Name(), comm, allowed, want)
		}
	}
	if !sawVCPU0 || !sawVCPU1 || !sawEmulator {
		t.Errorf("threads seen: vCPU0 %v, vCPU1 %v, emulator %v", sawVCPU0, sawVCPU1, sawEmulator)
	}

	cmdline := readFile(t, "/proc/"+pids[0]+"/cmdline")
	for _, want := range []string{
		`"qom-type":"iothread","id":"iothread2"`,
		`"aio":"native"`,
		`"cache":{"direct":true,"no-flush":false}`,
		`"detect-zeroes":"unmap"`,
		`"iothread":"iothread2"`,
		`"werror":"stop","rerror":"stop"`,
		`mem-merge=off`,
		`"driver":"virtio-rng-pci"`,
		`"driver":"i6300esb"`,
		`"driver":"pvpanic"`,
		`"driver":"floppy"`,
	} {
		if !strings.Contains(cmdline, want) {
			t.Errorf("QEMU command line lacks %s", want)
		}
	}
	live := dumpLive(t, h.URI(), "tuned")
	var agent string
	for _, ch := range live.Devices.Channels {
		if ch.Target.Name == "org.qemu.guest_agent.0" {
			agent = ch.Source.Path
		}
	}
	if agent == "" {
		t.Fatalf("live channels %+v: no guest agent socket path", live.Devices.Channels)
	}
	if fi, err := os.Stat(agent); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("guest agent channel %s: %v, want a socket", agent, err)
	}
	// The inactive definition keeps libvirt's form: no runtime path.
	if inactive := MustVirsh(t, h.URI(), "dumpxml", "--inactive", "tuned"); strings.Contains(inactive, agent) {
		t.Errorf("inactive XML carries the runtime channel path:\n%s", inactive)
	}
	MustVirsh(t, h.URI(), "destroy", "tuned")
	if _, err := os.Stat(agent); !os.IsNotExist(err) {
		t.Errorf("channel socket %s left behind after destroy (%v)", agent, err)
	}
}
