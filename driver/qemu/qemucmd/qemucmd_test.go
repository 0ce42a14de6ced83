package qemucmd

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
)

// libvirt's test suite runs every case with these runtime values; the
// golden .args files keep them, so the comparison is exact.
func suiteOptions(name string) Options {
	return Options{
		Emulator:  "/usr/bin/qemu-system-x86_64",
		DomainDir: "/var/lib/libvirt/qemu/domain--1-" + name,
		MonitorFD: 1729,
		PathEnv:   "/bin",
		// testutilsqemu passes chardev files from fd 1750 on.
		FirstPassFD: 1750,
	}
}

var goldenCases = []struct {
	name string
	opts Options
	// ref says where the expected command line comes from.
	ref string
}{
	{"demo", Options{
		Emulator:  "/usr/bin/qemu-system-x86_64",
		DomainDir: "/var/lib/libvirt/qemu/domain-4-demo",
		MonitorFD: 27,
		Incoming:  "defer",
		PathEnv:   "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	}, "libvirt-protocol-facts.md section 7 (real libvirt 9.0 / QEMU 7.2 log)"},
	{"disk-virtio", suiteOptions("QEMUGuest1"), "libvirt tests/qemuxml2argvdata/disk-virtio.x86_64-latest.args"},
	{"disk-cdrom", suiteOptions("QEMUGuest1"), "libvirt tests/qemuxml2argvdata/disk-cdrom.x86_64-latest.args"},
	{"net-user", suiteOptions("QEMUGuest1"), "libvirt tests/qemuxml2argvdata/net-user.x86_64-latest.args"},
	{"serial-file", suiteOptions("QEMUGuest1"), "libvirt tests/qemuxml2argvdata/serial-file-chardev / serial-file-log"},
	{"graphics-vnc", suiteOptions("QEMUGuest1"), "libvirt tests/qemuxml2argvdata/graphics-vnc.x86_64-latest.args"},
	{"q35", suiteOptions("q35-test"), "libvirt tests/qemuxml2argvdata/q35-default-devices-only.x86_64-latest.args"},
	{"kernel-pty-tablet", suiteOptions("tiny"), "composed from libvirt conventions (see XML comment)"},
}

func loadDomain(t *testing.T, name string) *libvirtxml.Domain {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name+".xml"))
	if err != nil {
		t.Fatal(err)
	}
	dom := &libvirtxml.Domain{}
	if err := dom.Unmarshal(string(data)); err != nil {
		t.Fatalf("parsing %s.xml: %v", name, err)
	}
	return dom
}

func TestGolden(t *testing.T) {
	// libvirt's test suite treats /dev/cdrom as the only optical drive.
	isCDROM = func(p string) bool { return p == "/dev/cdrom" }
	t.Cleanup(func() { isCDROM = hostIsCDROM })
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			dom := loadDomain(t, tc.name)
			cmd, err := Build(dom, tc.opts)
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			want, err := os.ReadFile(filepath.Join("testdata", tc.name+".args"))
			if err != nil {
				t.Fatal(err)
			}
			got := cmd.String()
			if got != string(want) {
				gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
				for i := 0; i < len(gl) || i < len(wl); i++ {
					var g, w string
					if i < len(gl) {
						g = gl[i]
					}
					if i < len(wl) {
						w = wl[i]
					}
					if g != w {
						t.Errorf("line %d:\n got: %s\nwant: %s", i+1, g, w)
						break
					}
				}
				t.Fatalf("command line differs from %s; got:\n%s", tc.ref, got)
			}
		})
	}
}

func TestAssignAliases(t *testing.T) {
	dom := loadDomain(t, "kernel-pty-tablet")
	AssignAliases(dom)
	d := dom.Devices
	checks := map[string]*libvirtxml.DomainAlias{
		"usb":      d.Controllers[0].Alias,
		"pci.0":    d.Controllers[1].Alias,
		"net0":     d.Interfaces[0].Alias,
		"serial0":  d.Serials[0].Alias,
		"input0":   d.Inputs[0].Alias,
		"input2":   d.Inputs[2].Alias,
		"balloon0": d.MemBalloon.Alias,
	}
	for want, a := range checks {
		if a == nil || a.Name != want {
			t.Errorf("alias %v, want %s", a, want)
		}
	}
	// The console is the serial port seen a second time.
	if a := d.Consoles[0].Alias; a == nil || a.Name != "serial0" {
		t.Errorf("console alias %v, want serial0", a)
	}
	// Existing aliases are kept and a second call changes nothing.
	d.Interfaces[0].Alias.Name = "net7"
	AssignAliases(dom)
	if d.Interfaces[0].Alias.Name != "net7" {
		t.Errorf("existing alias overwritten: %s", d.Interfaces[0].Alias.Name)
	}

	disks := loadDomain(t, "disk-virtio")
	AssignAliases(disks)
	for i, want := range []string{"ide0-0-0", "ide0-1-0", "virtio-disk0", "virtio-disk1"} {
		if got := disks.Devices.Disks[i].Alias.Name; got != want {
			t.Errorf("disk %d alias %s, want %s", i, got, want)
		}
	}
	q35 := loadDomain(t, "q35")
	AssignAliases(q35)
	for i, want := range []string{"usb", "ide", "pcie.0", "pci.1", "pci.2", "pci.3"} {
		if got := q35.Devices.Controllers[i].Alias.Name; got != want {
			t.Errorf("q35 controller %d alias %s, want %s", i, got, want)
		}
	}
}

func TestUnsupported(t *testing.T) {
	cases := map[string]func(*libvirtxml.Domain){
		"sound": func(d *libvirtxml.Domain) {
			d.Devices.Sounds = []libvirtxml.DomainSound{{Model: "ich9"}}
		},
		"bridge interface": func(d *libvirtxml.Domain) {
			d.Devices.Interfaces = []libvirtxml.DomainInterface{{
				Source: &libvirtxml.DomainInterfaceSource{Bridge: &libvirtxml.DomainInterfaceSourceBridge{Bridge: "br0"}},
			}}
		},
		"disk queues": func(d *libvirtxml.Domain) {
			d.Devices.Disks[0].Driver.Queues = new(uint)
		},
		"disk cache mode": func(d *libvirtxml.Domain) {
			d.Devices.Disks[0].Driver.Cache = "sometimes"
		},
		"channel without path": func(d *libvirtxml.Domain) {
			d.Devices.Channels = []libvirtxml.DomainChannel{{
				Source: &libvirtxml.DomainChardevSource{UNIX: &libvirtxml.DomainChardevSourceUNIX{Mode: "bind"}},
				Target: &libvirtxml.DomainChannelTarget{VirtIO: &libvirtxml.DomainChannelTargetVirtIO{Name: "org.qemu.guest_agent.0"}},
			}}
		},
		"host-model": func(d *libvirtxml.Domain) {
			d.CPU = &libvirtxml.DomainCPU{Mode: "host-model"}
		},
		"spice": func(d *libvirtxml.Domain) {
			d.Devices.Graphics = []libvirtxml.DomainGraphic{{Spice: &libvirtxml.DomainGraphicSpice{}}}
		},
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			dom := loadDomain(t, "net-user")
			mutate(dom)
			_, err := Build(dom, suiteOptions("QEMUGuest1"))
			var le *compat.Error
			if !errors.As(err, &le) || le.Code != libvirt.ErrConfigUnsupported {
				t.Fatalf("got %v, want a ConfigUnsupported error", err)
			}
		})
	}
}

func TestPassedFiles(t *testing.T) {
	dom := loadDomain(t, "serial-file")
	cmd, err := Build(dom, suiteOptions("QEMUGuest1"))
	if err != nil {
		t.Fatal(err)
	}
	want := PassedFile{FD: 1750, Path: "/tmp/serial.log", Append: true, Opaque: "serial0-source"}
	if len(cmd.Files) != 1 || cmd.Files[0] != want {
		t.Fatalf("Files = %+v, want [%+v]", cmd.Files, want)
	}
}

// A unix channel's socket is created by ExtraFiles and handed over
// listening, so a client can connect before QEMU runs.
func TestPassedListeningSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "channel", "org.qemu.guest_agent.0")
	cmd := &Command{Files: []PassedFile{{FD: 4, Path: path, Listen: true, Opaque: "channel0-source"}}}
	files, closeFiles, err := cmd.ExtraFiles(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFiles()
	if len(files) != 2 || files[1] == nil {
		t.Fatalf("files = %v, want the socket at index 1 (fd 4)", files)
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("connecting to the passed socket: %v", err)
	}
	c.Close()
}

// SPICE compression settings go on -spice in libvirt's order, between
// ticketing and seamless migration (virt-install writes image
// compression 'off' for a local display).
func TestSpiceCompression(t *testing.T) {
	dom := loadDomain(t, "net-user")
	dom.Devices.Graphics = []libvirtxml.DomainGraphic{{Spice: &libvirtxml.DomainGraphicSpice{
		Port: 5901, Listen: "127.0.0.1",
		Image:     &libvirtxml.DomainGraphicSpiceImage{Compression: "off"},
		Playback:  &libvirtxml.DomainGraphicSpicePlayback{Compression: "on"},
		Streaming: &libvirtxml.DomainGraphicSpiceStreaming{Mode: "filter"},
	}}}
	cmd, err := Build(dom, suiteOptions("QEMUGuest1"))
	if err != nil {
		t.Fatal(err)
	}
	want := "port=5901,addr=127.0.0.1,disable-ticketing=on,image-compression=off,playback-compression=on,streaming-video=filter,seamless-migration=on"
	for i, a := range cmd.Args {
		if a == "-spice" && i+1 < len(cmd.Args) {
			if cmd.Args[i+1] != want {
				t.Fatalf("-spice %s\nwant    %s", cmd.Args[i+1], want)
			}
			return
		}
	}
	t.Fatalf("no -spice in %v", cmd.Args)
}
