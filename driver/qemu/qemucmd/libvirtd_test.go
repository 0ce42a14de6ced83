package qemucmd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/driver/qemu/domainxml"
)

// debianHost answers like caps.Host on Debian 12 with QEMU 7.2, without
// KVM (the captures ran under TCG).
type debianHost struct{}

func (debianHost) CanonicalMachine(arch, name string) (string, bool) {
	switch name {
	case "pc", "pc-i440fx-7.2":
		return "pc-i440fx-7.2", true
	case "q35", "pc-q35-7.2":
		return "pc-q35-7.2", true
	}
	return "", false
}
func (debianHost) DefaultMachine(string) string { return "pc-i440fx-7.2" }
func (debianHost) Emulator(string) string       { return "/usr/bin/qemu-system-x86_64" }
func (debianHost) KVM() bool                    { return false }

// TestLibvirtdCaptures replays what a real libvirtd 9.0 did on this kind of
// machine (testdata/libvirtd/README.md): each NAME.in.xml, as virt-install
// or another real tool wrote it, is defined and compared with libvirtd's
// inactive definition (NAME.inactive.xml), then started the way the driver
// starts it, with the runtime values libvirtd chose, and compared with the
// command line libvirtd logged (NAME.args) and its live XML (NAME.live.xml).
func TestLibvirtdCaptures(t *testing.T) {
	ins, _ := filepath.Glob("testdata/libvirtd/*.in.xml")
	if len(ins) == 0 {
		t.Fatal("no captures")
	}
	for _, in := range ins {
		name := strings.TrimSuffix(filepath.Base(in), ".in.xml")
		t.Run(name, func(t *testing.T) {
			src := readTestdata(t, in)
			def, err := domainxml.Parse(src)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if err := domainxml.Validate(def, debianHost{}); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if err := domainxml.ApplyDefaults(def, debianHost{}); err != nil {
				t.Fatalf("ApplyDefaults: %v", err)
			}
			inactive, err := domainxml.Format(def, domainxml.FormatOptions{Inactive: true, Secure: true})
			if err != nil {
				t.Fatal(err)
			}
			base := strings.TrimSuffix(in, ".in.xml")
			compareLines(t, "inactive definition", inactive, readTestdata(t, base+".inactive.xml"))

			live, err := domainxml.Parse(inactive)
			if err != nil {
				t.Fatal(err)
			}
			dir := "/var/lib/libvirt/qemu/domain-1-" + name
			rt := domainxml.Runtime{
				ChannelDir: "/var/lib/libvirt/qemu/channel/target/domain-1-" + name,
				// The captured images had no backing file.
				BackingChain: func(path, _ string) ([]domainxml.Image, error) { return capturedChains[path], nil },
			}
			if err := domainxml.PrepareLive(live, rt, &fixedPorts{next: 5900}); err != nil {
				t.Fatalf("PrepareLive: %v", err)
			}
			opts := Options{
				Emulator:  "/usr/bin/qemu-system-x86_64",
				DomainDir: dir,
				MonitorFD: 27,
				PathEnv:   "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			}
			// libvirt opens listening sockets for unix channels before
			// the monitor's, so they take the lower descriptors.
			if n := unixChannels(live); n > 0 {
				opts.FirstPassFD, opts.MonitorFD = 27, 27+n
			}
			if len(live.Devices.TPMs) > 0 {
				opts.TPMSocket = "/run/libvirt/qemu/swtpm/1-" + name + "-swtpm.sock"
			}
			cmd, err := Build(live, opts)
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			compareLines(t, "command line", cmd.String(), readTestdata(t, base+".args"))
			// The disks of the live definition: sources with their image
			// index, probed backing chains.
			liveXML, err := domainxml.Format(live, domainxml.FormatOptions{Live: &domainxml.LiveInfo{ID: 1}, Secure: true})
			if err != nil {
				t.Fatal(err)
			}
			compareLines(t, "live disks", diskElements(liveXML), diskElements(readTestdata(t, base+".live.xml")))
		})
	}
}

// diskElements keeps the <disk> elements of a domain XML.
func diskElements(xml string) string {
	var out []string
	in := false
	for _, l := range strings.Split(xml, "\n") {
		if strings.Contains(l, "<disk ") {
			in = true
		}
		if in {
			out = append(out, l)
		}
		if strings.Contains(l, "</disk>") {
			in = false
		}
	}
	return strings.Join(out, "\n")
}

// capturedChains are the backing chains of the captured images (the
// others had none).
var capturedChains = map[string][]domainxml.Image{
	"/tmp/lvcap/top.qcow2": {{Path: "/tmp/lvcap/base.qcow2", Format: "qcow2"}},
}

// fixedPorts hands out display ports from 5900 on, as libvirtd did for
// the first guest it started.
type fixedPorts struct{ next int }

func (p *fixedPorts) Reserve(string) (int, error) {
	n := p.next
	p.next++
	return n, nil
}

func unixChannels(d *libvirtxml.Domain) int {
	n := 0
	for _, c := range d.Devices.Channels {
		if c.Source != nil && c.Source.UNIX != nil {
			n++
		}
	}
	return n
}

func readTestdata(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// compareLines reports the first differing line, then the whole text.
func compareLines(t *testing.T, what, got, want string) {
	t.Helper()
	if got == want {
		return
	}
	gl, wl := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(gl) || i < len(wl); i++ {
		var g, w string
		if i < len(gl) {
			g = gl[i]
		}
		if i < len(wl) {
			w = wl[i]
		}
		if g != w {
			t.Errorf("%s, line %d:\n got: %s\nwant: %s", what, i+1, g, w)
			break
		}
	}
	t.Fatalf("%s differs from libvirtd's; got:\n%s", what, got)
}

// <controller type='usb' model='none'/> means no USB at all: no implicit
// piix3-uhci is added, QEMU gets no USB controller, and a USB device is
// refused.
func TestUSBNone(t *testing.T) {
	const doc = `<domain type='qemu'>
  <name>bare</name>
  <memory unit='KiB'>219136</memory>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <controller type='usb' index='0' model='none'/>
  </devices>
</domain>`
	def, err := domainxml.Parse(doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := domainxml.Validate(def, debianHost{}); err != nil {
		t.Fatal(err)
	}
	if err := domainxml.ApplyDefaults(def, debianHost{}); err != nil {
		t.Fatal(err)
	}
	inactive, err := domainxml.Format(def, domainxml.FormatOptions{Inactive: true})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(inactive, "<controller type='usb'") != 1 || !strings.Contains(inactive, "<controller type='usb' index='0' model='none'/>") {
		t.Errorf("definition should keep exactly the model='none' USB controller:\n%s", inactive)
	}
	cmd, err := Build(def, Options{Emulator: "/usr/bin/qemu-system-x86_64", DomainDir: "/tmp/d", MonitorFD: 3, PathEnv: "/bin"})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range cmd.Args {
		if strings.Contains(strings.ReplaceAll(a, "usb=off", ""), "usb") || strings.Contains(a, "hci") {
			t.Errorf("QEMU gets USB anyway: %q\n%s", a, cmd.String())
		}
	}

	withTablet := strings.Replace(doc, "</devices>", "<input type='tablet' bus='usb'/></devices>", 1)
	def, err = domainxml.Parse(withTablet)
	if err != nil {
		t.Fatal(err)
	}
	if err := domainxml.Validate(def, debianHost{}); err == nil {
		t.Errorf("a USB tablet without USB was accepted")
	}
}
