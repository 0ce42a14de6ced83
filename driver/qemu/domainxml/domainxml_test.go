package domainxml

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
)

var update = flag.Bool("update", false, "rewrite golden files")

// fakeHost answers like caps.Host does on a Debian 12 host with QEMU 7.2.
type fakeHost struct{ kvm bool }

func (h fakeHost) CanonicalMachine(arch, name string) (string, bool) {
	if arch != "x86_64" && arch != "i686" {
		return "", false
	}
	switch name {
	case "pc":
		return "pc-i440fx-7.2", true
	case "q35":
		return "pc-q35-7.2", true
	case "pc-i440fx-7.2", "pc-q35-7.2", "pc-i440fx-6.2", "pc-q35-6.2":
		return name, true
	}
	return "", false
}
func (h fakeHost) DefaultMachine(string) string { return "pc-i440fx-7.2" }
func (h fakeHost) Emulator(arch string) string {
	if arch == "i686" {
		return "/usr/bin/qemu-system-i386"
	}
	return "/usr/bin/qemu-system-x86_64"
}
func (h fakeHost) KVM() bool { return h.kvm }

func define(t *testing.T, in string) string {
	t.Helper()
	d, err := Parse(in)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	// The emulator check looks at the real filesystem; tests use the
	// fake host's path, which need not exist here.
	if d.Devices != nil {
		d.Devices.Emulator = ""
	}
	if err := Validate(d, fakeHost{}); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	d, _ = Parse(in)
	if err := ApplyDefaults(d, fakeHost{}); err != nil {
		t.Fatalf("ApplyDefaults: %v", err)
	}
	out, err := Format(d, FormatOptions{Inactive: true, Secure: true})
	if err != nil {
		t.Fatalf("Format: %v", err)
	}
	// A definition must be a fixed point: re-defining the output gives it back.
	d2, err := Parse(out)
	if err != nil {
		t.Fatalf("re-Parse: %v", err)
	}
	if err := ApplyDefaults(d2, fakeHost{}); err != nil {
		t.Fatalf("re-ApplyDefaults: %v", err)
	}
	out2, _ := Format(d2, FormatOptions{Inactive: true, Secure: true})
	if out2 != out {
		t.Errorf("defaults are not idempotent:\nfirst:\n%s\nsecond:\n%s", out, out2)
	}
	return out
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s mismatch:\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// TestGolden runs every testdata/NAME.in.xml through define and compares
// with NAME.out.xml (inactive definition) and, when present,
// NAME.migratable.xml (running domain, VIR_DOMAIN_XML_MIGRATABLE).
func TestGolden(t *testing.T) {
	ins, _ := filepath.Glob("testdata/*.in.xml")
	if len(ins) == 0 {
		t.Fatal("no test inputs")
	}
	for _, in := range ins {
		name := strings.TrimSuffix(filepath.Base(in), ".in.xml")
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			out := define(t, string(src))
			golden(t, "testdata/"+name+".out.xml", out)
			mig := "testdata/" + name + ".migratable.xml"
			if _, err := os.Stat(mig); err == nil {
				d, _ := Parse(out)
				got, err := Format(d, FormatOptions{Secure: true, Migratable: true, Live: &LiveInfo{ID: 4}})
				if err != nil {
					t.Fatal(err)
				}
				golden(t, mig, got)
			}
		})
	}
}

const base = `<domain type='%s'><name>t</name><memory>131072</memory>%s<devices>%s</devices></domain>`

func TestValidateUnsupported(t *testing.T) {
	cases := []struct {
		typ, top, devices, mention string
	}{
		{"xen", "", "", "domain type 'xen'"},
		{"kvm", "", "", "domain type 'kvm'"},
		{"qemu", "<memoryBacking><hugepages/></memoryBacking>", "", "<memoryBacking>"},
		{"qemu", "<on_crash>preserve</on_crash>", "", "<on_crash> 'preserve'"},
		{"qemu", "<on_reboot>rename-restart</on_reboot>", "", "<on_reboot> 'rename-restart'"},
		{"qemu", "<os><type machine='isapc'>hvm</type></os>", "", "<os><type machine> 'isapc'"},
		{"qemu", "<os><type arch='aarch64'>hvm</type></os>", "", "<os><type arch> 'aarch64'"},
		{"qemu", "<os><type>hvm</type><loader>/x</loader></os>", "", "<os><loader>"},
		{"qemu", "<cpu mode='host-passthrough'/>", "", "host-passthrough"},
		{"qemu", "<features><hyperv/></features>", "", "<features>"},
		{"qemu", "", "<hostdev mode='subsystem' type='pci'/>", "<devices><hostdev>"},
		{"qemu", "", "<rng model='virtio'><backend model='random'>/etc/passwd</backend></rng>", "device '/etc/passwd'"},
		{"qemu", "", "<rng model='virtio'><backend model='egd' type='tcp'><source mode='connect' host='192.0.2.1' service='1'/></backend></rng>", "loopback"},
		{"qemu", "", "<sound model='sb16'/>", "<sound model> 'sb16'"},
		{"qemu", "", "<sound model='ich9'/>", "needs a q35"},
		{"qemu", "", "<watchdog model='diag288'/>", "<watchdog model> 'diag288'"},
		{"qemu", "", "<watchdog model='itco'/>", "only part of q35"},
		{"qemu", "", "<channel type='pty'><target type='guestfwd'/></channel>", "<channel><target type>"},
		{"qemu", "", "<channel type='spicevmc'><target type='virtio' name='com.redhat.spice.0'/></channel>", "needs a <graphics type='spice'>"},
		{"qemu", "", "<redirdev bus='usb' type='spicevmc'/>", "needs a <graphics type='spice'>"},
		{"qemu", "", "<disk type='network'><source protocol='nbd' name='x'><host name='127.0.0.1'/></source><target dev='vda'/></disk>", "<disk type>"},
		{"qemu", "", "<disk type='file'><driver name='qemu' cache='none' io='native' queues='2'/><source file='/x'/><target dev='vda'/></disk>", "<driver> attributes"},
		{"qemu", "", "<disk type='file'><driver name='qemu' io='native'/><source file='/x'/><target dev='vda'/></disk>", "native I/O"},
		{"qemu", "", "<disk type='file' device='floppy'><source file='/x'/><target dev='vdb' bus='virtio'/></disk>", "floppy disks need bus 'fdc'"},
		{"qemu", "", "<disk type='file'><driver name='qemu' type='vmdk'/><source file='/x'/><target dev='vda'/></disk>", "<disk><driver type> 'vmdk'"},
		{"qemu", "", "<disk type='file'><source file='/x'/><target dev='sda' bus='scsi'/></disk>", "<disk><target bus> 'scsi'"},
		{"qemu", "", "<disk type='file' device='lun'><source file='/x'/><target dev='sda'/></disk>", "<disk device> 'lun'"},
		{"qemu", "", "<controller type='scsi' index='0'/>", "<controller type> 'scsi'"},
		{"qemu", "", "<controller type='usb' index='0' model='ehci'/>", "model 'ehci'"},
		{"qemu", "", "<interface type='direct'><source dev='eth0' mode='bridge'/></interface>", "<interface type>"},
		{"qemu", "", "<interface type='user'><model type='ne2k_pci'/></interface>", "<interface><model type> 'ne2k_pci'"},
		{"qemu", "", "<serial type='tcp'><source mode='bind' host='0' service='1'/></serial>", "<serial> type"},
		{"qemu", "", "<input type='passthrough' bus='virtio'/>", "<input type> 'passthrough'"},
		{"qemu", "", "<graphics type='sdl'/>", "<graphics type>"},
		{"qemu", "", "<graphics type='spice' tlsPort='5901'/>", "with TLS"},
		{"qemu", "", "<graphics type='vnc' listen='0.0.0.0'/>", "listen address '0.0.0.0'"},
		{"qemu", "", "<video><model type='bochs'/></video>", "<video><model type> 'bochs'"},
		{"qemu", "", "<memballoon model='virtio-transitional'/>", "<memballoon model>"},
		{"qemu", "", "<audio id='1' type='pulseaudio'/>", "<audio type>"},
		{"qemu", "<os><type machine='q35'>hvm</type></os>", "<disk type='file'><source file='/x'/><target dev='hda' bus='ide'/></disk>", "IDE controllers"},
	}
	for _, c := range cases {
		doc := strings.Replace(strings.Replace(strings.Replace(base, "%s", c.typ, 1), "%s", c.top, 1), "%s", c.devices, 1)
		d, err := Parse(doc)
		if err != nil {
			t.Errorf("Parse(%s): %v", doc, err)
			continue
		}
		err = Validate(d, fakeHost{})
		if !compat.Is(err, libvirt.ErrConfigUnsupported) {
			t.Errorf("Validate(%s) = %v, want ConfigUnsupported", doc, err)
			continue
		}
		if le := compat.As(err); le.Domain != compat.FromQEMU || !strings.Contains(le.Message(), c.mention) {
			t.Errorf("Validate(%s) = %q (domain %d), want mention of %q", doc, le.Message(), le.Domain, c.mention)
		}
	}
}

func TestValidateAcceptsSubset(t *testing.T) {
	doc := `<domain type='kvm'><name>t</name><title>x</title><description>y</description>
<metadata><app:foo xmlns:app='urn:x'>1</app:foo></metadata>
<memory unit='MiB'>256</memory><currentMemory unit='MiB'>128</currentMemory><vcpu current='1'>2</vcpu>
<os><type arch='x86_64' machine='q35'>hvm</type><kernel>/k</kernel><initrd>/i</initrd><cmdline>console=ttyS0</cmdline></os>
<features><acpi/><apic/><pae/></features><cpu mode='host-passthrough'/>
<clock offset='localtime'><timer name='rtc' tickpolicy='catchup'/></clock>
<on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot><on_crash>restart</on_crash>
<pm><suspend-to-mem enabled='no'/></pm>
<devices>
<disk type='file' device='disk'><driver name='qemu' type='qcow2' cache='none' io='native' discard='unmap'/><source file='/a.qcow2'/><target dev='vda' bus='virtio'/><serial>abc</serial><boot order='1'/></disk>
<disk type='file' device='cdrom'><source file='/b.iso'/><target dev='sda' bus='sata'/><readonly/><shareable/></disk>
<controller type='virtio-serial' index='0'/>
<interface type='user'><mac address='52:54:00:01:02:03'/><model type='virtio'/></interface>
<serial type='file'><source path='/tmp/s.log' append='on'/></serial>
<input type='tablet' bus='usb'/><graphics type='vnc' listen='127.0.0.1'/><video><model type='virtio'/></video>
<memballoon model='none'/><audio id='1' type='none'/>
</devices><seclabel type='none'/></domain>`
	d, err := Parse(doc)
	if err != nil {
		t.Fatal(err)
	}
	d.Devices.Emulator = ""
	if err := Validate(d, fakeHost{kvm: true}); err != nil {
		t.Fatal(err)
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		doc  string
		code libvirt.ErrorNumber
		msg  string
	}{
		{"<domain type='qemu'><name>x</nme></domain>", libvirt.ErrXMLDetail, "(domain_definition):1: "},
		{"", libvirt.ErrXMLDetail, "(domain_definition):1: Document is empty"},
		{"<network/>", libvirt.ErrXMLError, "XML error: expecting root element of 'domain', not 'network'"},
		{"<domain type='qemu'><memory>1</memory></domain>", libvirt.ErrNoName, "missing name information"},
		{"<domain type='qemu'><name>x</name></domain>", libvirt.ErrXMLError, "XML error: Memory size must be specified via <memory> or in the <numa> configuration"},
		{"<domain type='qemu'><name>x</name><memory>lots</memory></domain>", libvirt.ErrXMLError, "XML error: "},
	}
	for _, c := range cases {
		_, err := Parse(c.doc)
		le := compat.As(err)
		if err == nil || le.Code != c.code || le.Domain != compat.FromDomain || !strings.HasPrefix(le.Message(), c.msg) {
			t.Errorf("Parse(%q) = %v, want code %d message %q", c.doc, err, c.code, c.msg)
		}
	}
}

// TestDemoForms checks the other forms of the reference domain against the
// libvirt 9.0 captures: the persistent definition libvirt puts in the
// Perform3 cookie (inactive + migratable) and the running XML.
func TestDemoForms(t *testing.T) {
	src, err := os.ReadFile("testdata/demo.in.xml")
	if err != nil {
		t.Fatal(err)
	}
	d, err := Parse(string(src))
	if err != nil {
		t.Fatal(err)
	}
	if err := ApplyDefaults(d, fakeHost{}); err != nil {
		t.Fatal(err)
	}
	got, err := Format(d, FormatOptions{Inactive: true, Secure: true, Migratable: true})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "testdata/demo.persistent-migratable.xml", got)

	d.Devices.Controllers[0].Alias = &libvirtxml.DomainAlias{Name: "usb"}
	d.Devices.MemBalloon.Alias = &libvirtxml.DomainAlias{Name: "balloon0"}
	live, err := Format(d, FormatOptions{Live: &LiveInfo{ID: 4}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"<domain type='qemu' id='4'>",
		"  <resource>\n    <partition>/machine</partition>\n  </resource>\n",
		"<alias name='balloon0'/>",
		"  <seclabel type='dynamic' model='dac' relabel='yes'>\n    <label>+0:+0</label>\n    <imagelabel>+0:+0</imagelabel>\n  </seclabel>\n",
	} {
		if !strings.Contains(live, want) {
			t.Errorf("live XML lacks %q:\n%s", want, live)
		}
	}
	// StripLive on the parsed live XML gives back the inactive definition.
	ld, err := Parse(live)
	if err != nil {
		t.Fatal(err)
	}
	StripLive(ld)
	inactive, _ := Format(ld, FormatOptions{Inactive: true, Secure: true})
	golden(t, "testdata/demo.out.xml", inactive)
}

func TestFormatSecure(t *testing.T) {
	d, err := Parse(`<domain type='qemu'><name>v</name><memory>1024</memory><devices><graphics type='vnc' passwd='s3cret' listen='127.0.0.1'/></devices></domain>`)
	if err != nil {
		t.Fatal(err)
	}
	if err := ApplyDefaults(d, fakeHost{}); err != nil {
		t.Fatal(err)
	}
	plain, _ := Format(d, FormatOptions{Inactive: true})
	secure, _ := Format(d, FormatOptions{Inactive: true, Secure: true})
	if strings.Contains(plain, "s3cret") || !strings.Contains(secure, "passwd='s3cret'") {
		t.Errorf("Secure not honoured:\n%s\n%s", plain, secure)
	}
}

// TestLibvirtMigratableXMLAccepted: the XML a libvirtd 9.0 source sends in
// Begin3 (captured) is a definition govirtd accepts as a destination, and
// formats back to the same migratable XML.
func TestLibvirtMigratableXMLAccepted(t *testing.T) {
	data, err := os.ReadFile("testdata/demo.migratable.xml")
	if err != nil {
		t.Fatal(err)
	}
	d, err := Parse(string(data))
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(d, fakeHost{}); err != nil {
		t.Fatalf("libvirt's migratable XML refused: %v", err)
	}
	if err := ApplyDefaults(d, fakeHost{}); err != nil {
		t.Fatal(err)
	}
	out, err := Format(d, FormatOptions{Migratable: true, Live: &LiveInfo{ID: 7}})
	if err != nil {
		t.Fatal(err)
	}
	if out != string(data) {
		t.Errorf("round trip of libvirt's migratable XML:\n got %s\nwant %s", out, data)
	}
}

func TestEmptyBackingStore(t *testing.T) {
	for xml, want := range map[string]bool{
		"<backingStore/>": true,
		"<backingStore type='file'><format type='qcow2'/><source file='/b.qcow2'/></backingStore>": false,
	} {
		var d libvirtxml.Domain
		if err := d.Unmarshal("<domain type='qemu'><name>x</name><devices><disk type='file' device='disk'><source file='/a.qcow2'/>" + xml + "<target dev='vda' bus='virtio'/></disk></devices></domain>"); err != nil {
			t.Fatal(err)
		}
		if got := EmptyBackingStore(d.Devices.Disks[0].BackingStore); got != want {
			t.Errorf("EmptyBackingStore(%s) = %v", xml, got)
		}
	}
}

// Drive addresses a controller cannot have are refused before defaults
// would add a controller for each index up to them.
func TestDriveAddressLimits(t *testing.T) {
	for _, c := range []struct{ name, disk string }{
		{"explicit controller", `<disk type='file' device='disk'><source file='/tmp/a.img'/><target dev='hda' bus='ide'/><address type='drive' controller='4000000' bus='0' target='0' unit='0'/></disk>`},
		{"ide unit", `<disk type='file' device='disk'><source file='/tmp/a.img'/><target dev='hda' bus='ide'/><address type='drive' unit='2'/></disk>`},
		{"name far past the controllers", `<disk type='file' device='disk'><source file='/tmp/a.img'/><target dev='hdcide' bus='ide'/></disk>`},
		{"long name", `<disk type='file' device='disk'><source file='/tmp/a.img'/><target dev='sdzzzzzzzzzzzzzzzzzzzzzz' bus='sata'/></disk>`},
		{"virtio with a drive address", `<disk type='file' device='disk'><source file='/tmp/a.img'/><target dev='vda' bus='virtio'/><address type='drive' unit='0'/></disk>`},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, err := Parse(`<domain type='qemu'><name>x</name><memory>65536</memory><os><type arch='x86_64' machine='pc'>hvm</type></os><devices>` + c.disk + `</devices></domain>`)
			if err != nil {
				t.Fatal(err)
			}
			err = Validate(d, fakeHost{})
			if !compat.Is(err, libvirt.ErrConfigUnsupported) {
				t.Fatalf("Validate: %v, want VIR_ERR_CONFIG_UNSUPPORTED", err)
			}
		})
	}
	// Left-out attributes are 0, and are written.
	d, err := Parse(`<domain type='qemu'><name>x</name><memory>65536</memory><os><type arch='x86_64' machine='pc'>hvm</type></os><devices><disk type='file' device='disk'><source file='/tmp/a.img'/><target dev='hdb' bus='ide'/><address type='drive' unit='1'/></disk></devices></domain>`)
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(d, fakeHost{}); err != nil {
		t.Fatal(err)
	}
	if err := ApplyDefaults(d, fakeHost{}); err != nil {
		t.Fatal(err)
	}
	if out, _ := Format(d, FormatOptions{Inactive: true}); !strings.Contains(out, `<address type='drive' controller='0' bus='0' target='0' unit='1'/>`) {
		t.Errorf("drive address not completed:\n%s", out)
	}
}
