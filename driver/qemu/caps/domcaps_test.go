package caps

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"

	"github.com/govirtd/govirtd/test/deps"
)

// fakeDomCapsQEMU is a qemu-system-x86_64 stand-in that replays QEMU 7.2
// captures: the Probe ones and, for the domain capabilities QMP script and
// -display help, the files under testdata/domcaps.
func fakeDomCapsQEMU(t *testing.T) string {
	t.Helper()
	td := mustAbs(t, "testdata")
	script := `#!/bin/sh
prev=
for a in "$@"; do
  case "$a" in
    -version) cat '` + td + `/x86_64-version.txt'; exit 0 ;;
    -qmp)
      in=$(cat)
      case "$in" in
        *query-cpu-definitions*) cat '` + td + `/domcaps/x86_64-qmp-tcg.txt' ;;
        *) cat '` + td + `/x86_64-qmp-query-machines.txt' ;;
      esac
      exit 0 ;;
    help)
      if [ "$prev" = -display ]; then cat '` + td + `/domcaps/x86_64-display-help.txt'
      else cat '` + td + `/x86_64-machine-help.txt'; fi
      exit 0 ;;
  esac
  prev=$a
done
exit 1
`
	p := filepath.Join(t.TempDir(), "qemu-system-x86_64")
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// fixtureHost probes the fake QEMU without KVM and with firmwareRoot
// pointed at an empty tree (restored after the test).
func fixtureHost(t *testing.T) (*Host, string) {
	t.Helper()
	if unameMachine() != "x86_64" {
		t.Skip("defaults depend on an x86_64 host")
	}
	emu := fakeDomCapsQEMU(t)
	h, err := Probe(context.Background(), Options{
		HostUUID:   testUUID,
		Emulators:  []string{emu},
		SysRoot:    "testdata/sysroot-2node",
		DisableKVM: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	setFirmwareRoot(t, t.TempDir())
	return h, emu
}

func setFirmwareRoot(t *testing.T, root string) {
	old := firmwareRoot
	firmwareRoot = root
	t.Cleanup(func() { firmwareRoot = old })
}

func parseDomCaps(t *testing.T, doc string) *libvirtxml.DomainCaps {
	t.Helper()
	dc := &libvirtxml.DomainCaps{}
	if err := dc.Unmarshal(doc); err != nil {
		t.Fatalf("domain capabilities do not parse: %v\n%s", err, doc)
	}
	return dc
}

func cpuMode(dc *libvirtxml.DomainCaps, name string) *libvirtxml.DomainCapsCPUMode {
	for i := range dc.CPU.Modes {
		if dc.CPU.Modes[i].Name == name {
			return &dc.CPU.Modes[i]
		}
	}
	return nil
}

func enumValues(es []libvirtxml.DomainCapsEnum, name string) []string {
	for _, e := range es {
		if e.Name == name {
			return e.Values
		}
	}
	return nil
}

// validateDomCaps checks doc against libvirt's domaincaps.rng, with the
// validator of the installed libvirt.
func validateDomCaps(t *testing.T, doc string) {
	t.Helper()
	deps.Require(t, "virt-xml-validate", "xmllint", "/usr/share/libvirt/schemas/domaincaps.rng")
	p := filepath.Join(t.TempDir(), "domcaps.xml")
	if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("virt-xml-validate", p, "domaincaps").CombinedOutput(); err != nil {
		t.Fatalf("schema validation failed: %v\n%s\n%s", err, out, doc)
	}
}

func TestDomainCapabilitiesDefaults(t *testing.T) {
	h, emu := fixtureHost(t)
	doc, err := h.DomainCapabilities("", "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc, "<domainCapabilities>\n  <path>") || !strings.HasSuffix(doc, "</domainCapabilities>\n") {
		t.Errorf("not in libvirt's layout:\n%s", doc)
	}
	if !strings.Contains(doc, "<vcpu max='255'/>") || !strings.Contains(doc, "<enum name='capsType'/>") {
		t.Errorf("expected libvirt-style quoting and empty elements:\n%s", doc)
	}
	dc := parseDomCaps(t, doc)
	if dc.Path != emu || dc.Domain != "qemu" || dc.Machine != "pc-i440fx-7.2" || dc.Arch != "x86_64" {
		t.Errorf("header = %q %q %q %q", dc.Path, dc.Domain, dc.Machine, dc.Arch)
	}
	if dc.VCPU == nil || dc.VCPU.Max != 255 {
		t.Errorf("vcpu = %+v, want max 255", dc.VCPU)
	}
	// libvirt prints the firmware enum before the loader.
	if i, j := strings.Index(doc, "<enum name='firmware'"), strings.Index(doc, "<loader"); i < 0 || j < 0 || i > j {
		t.Errorf("firmware enum must precede loader:\n%s", doc)
	}
	if got := enumValues(dc.OS.Enums, "firmware"); len(got) != 0 {
		t.Errorf("firmware = %v with no firmware installed", got)
	}
	if m := cpuMode(dc, "host-passthrough"); m == nil || m.Supported != "no" {
		t.Errorf("host-passthrough under TCG = %+v", m)
	}
	if m := cpuMode(dc, "maximum"); m == nil || m.Supported != "yes" {
		t.Errorf("maximum = %+v", m)
	}
	custom := cpuMode(dc, "custom")
	if custom == nil || custom.Supported != "yes" {
		t.Fatalf("custom = %+v", custom)
	}
	usable := map[string]string{}
	vendor := map[string]string{}
	for _, m := range custom.Models {
		usable[m.Name], vendor[m.Name] = m.Usable, m.Vendor
	}
	// From the QEMU 7.2 TCG capture: qemu64 runs anywhere, Broadwell
	// needs features TCG lacks; versioned and pseudo models are not in
	// libvirt 9.0's CPU map.
	for name, want := range map[string]string{"qemu64": "yes", "Conroe": "yes", "Broadwell": "no", "EPYC-Rome": "no"} {
		if usable[name] != want {
			t.Errorf("model %s usable = %q, want %q", name, usable[name], want)
		}
	}
	for _, absent := range []string{"max", "host", "base", "qemu64-v1", "KnightsMill"} {
		if _, ok := usable[absent]; ok {
			t.Errorf("model %s listed", absent)
		}
	}
	if vendor["EPYC"] != "AMD" || vendor["486"] != "unknown" || vendor["Dhyana"] != "Hygon" {
		t.Errorf("vendors: EPYC=%q 486=%q Dhyana=%q", vendor["EPYC"], vendor["486"], vendor["Dhyana"])
	}
	// The capture's QEMU has no SDL module and SPICE only as a module.
	if got := enumValues(dc.Devices.Graphics.Enums, "type"); !slices.Equal(got, []string{"vnc", "spice", "egl-headless", "dbus"}) {
		t.Errorf("graphics = %v", got)
	}
	if got := enumValues(dc.Devices.Video.Enums, "modelType"); !slices.Equal(got, []string{"vga", "cirrus", "vmvga", "qxl", "virtio", "none", "bochs", "ramfb"}) {
		t.Errorf("video = %v", got)
	}
	if got := enumValues(dc.Devices.Disk.Enums, "bus"); !slices.Equal(got, []string{"ide", "fdc", "scsi", "virtio", "usb", "sata"}) {
		t.Errorf("disk bus = %v", got)
	}
	if f := dc.Features; f.GIC.Supported != "no" || f.VMCoreInfo.Supported != "yes" || f.GenID.Supported != "yes" ||
		f.SEV.Supported != "no" || f.SGX.Supported != "no" || f.AsyncTeardown != nil {
		t.Errorf("features = %+v", f)
	}
	validateDomCaps(t, doc)
}

func TestDomainCapabilitiesQ35AndAliases(t *testing.T) {
	h, emu := fixtureHost(t)
	for _, m := range []string{"q35", "pc-q35-7.2"} {
		doc, err := h.DomainCapabilities(emu, "x86_64", m, "qemu")
		if err != nil {
			t.Fatal(err)
		}
		dc := parseDomCaps(t, doc)
		if dc.Machine != "pc-q35-7.2" || dc.VCPU == nil || dc.VCPU.Max != 288 {
			t.Errorf("%s: machine %q vcpu %+v, want pc-q35-7.2 / 288", m, dc.Machine, dc.VCPU)
		}
		validateDomCaps(t, doc)
	}
	doc, err := h.DomainCapabilities("", "", "pc", "")
	if err != nil {
		t.Fatal(err)
	}
	if dc := parseDomCaps(t, doc); dc.Machine != "pc-i440fx-7.2" {
		t.Errorf("pc resolved to %q", dc.Machine)
	}
	// The x86_64 binary also serves i686 guests here; asking by arch works,
	// naming the binary with the other arch does not (as in libvirt).
	doc, err = h.DomainCapabilities("", "i686", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if dc := parseDomCaps(t, doc); dc.Arch != "i686" || dc.Path != emu {
		t.Errorf("i686: arch %q path %q", dc.Arch, dc.Path)
	}
}

func TestDomainCapabilitiesFirmware(t *testing.T) {
	h, _ := fixtureHost(t)
	root := t.TempDir()
	for _, p := range []string{"/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd", "/usr/share/seabios/bios-256k.bin"} {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	setFirmwareRoot(t, root)
	for _, tc := range []struct {
		machine string
		secure  []string
	}{{"pc", []string{"no"}}, {"q35", []string{"no", "yes"}}} {
		doc, err := h.DomainCapabilities("", "", tc.machine, "")
		if err != nil {
			t.Fatal(err)
		}
		dc := parseDomCaps(t, doc)
		if got := enumValues(dc.OS.Enums, "firmware"); !slices.Equal(got, []string{"bios", "efi"}) {
			t.Errorf("%s: firmware = %v", tc.machine, got)
		}
		if got := dc.OS.Loader.Values; !slices.Equal(got, []string{"/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd"}) {
			t.Errorf("%s: loader values = %v", tc.machine, got)
		}
		if got := enumValues(dc.OS.Loader.Enums, "secure"); !slices.Equal(got, tc.secure) {
			t.Errorf("%s: secure = %v, want %v", tc.machine, got, tc.secure)
		}
		validateDomCaps(t, doc)
	}
}

func TestDomainCapabilitiesErrors(t *testing.T) {
	h, emu := fixtureHost(t)
	missing := filepath.Join(t.TempDir(), "qemu-system-x86_64")
	for _, tc := range []struct {
		emulator, arch, machine, virttype string
		code                              libvirt.ErrorNumber
		msg                               string
	}{
		{"", "", "pc-i440fx-1.0-bogus", "", libvirt.ErrInvalidArg,
			"invalid argument: the machine 'pc-i440fx-1.0-bogus' is not supported by emulator '" + emu + "'"},
		{"", "bogus", "", "", libvirt.ErrInvalidArg, "invalid argument: unknown architecture: bogus"},
		{"", "aarch64", "", "", libvirt.ErrInvalidArg,
			"invalid argument: unable to find any emulator to serve 'aarch64' architecture"},
		{"", "", "", "bogus", libvirt.ErrInvalidArg, "invalid argument: unknown virttype: bogus"},
		{"", "", "", "kvm", libvirt.ErrInvalidArg,
			"invalid argument: KVM is not supported by '" + emu + "' on this host"},
		{emu, "i686", "", "", libvirt.ErrInvalidArg,
			"invalid argument: architecture from emulator 'x86_64' doesn't match given architecture 'i686'"},
		{missing, "", "", "", libvirt.ErrSystemError,
			"Cannot check QEMU binary " + missing + ": No such file or directory"},
	} {
		_, err := h.DomainCapabilities(tc.emulator, tc.arch, tc.machine, tc.virttype)
		if err == nil {
			t.Errorf("%+v: no error", tc)
			continue
		}
		le := compat.As(err)
		if le.Code != tc.code || le.Message() != tc.msg {
			t.Errorf("%+v:\n got %v %q\nwant %v %q", tc, le.Code, le.Message(), tc.code, tc.msg)
		}
	}
}

// TestDomainCapabilitiesCached checks that only the first call per
// emulator/virttype starts QEMU: the second must not even find the binary.
func TestDomainCapabilitiesCached(t *testing.T) {
	h, emu := fixtureHost(t)
	t0 := time.Now()
	first, err := h.DomainCapabilities("", "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	d1 := time.Since(t0)
	if err := os.WriteFile(emu, []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t0 = time.Now()
	second, err := h.DomainCapabilities("", "", "q35", "")
	if err != nil {
		t.Fatalf("cached call ran QEMU: %v", err)
	}
	d2 := time.Since(t0)
	t.Logf("first call %v, cached call %v", d1, d2)
	if first == second {
		t.Error("q35 and i440fx documents are identical")
	}
	if d2 > 100*time.Millisecond {
		t.Errorf("cached call took %v", d2)
	}
}

// TestDomainCapabilitiesRealQEMU runs against the installed QEMU, with KVM
// when the host offers it.
func TestDomainCapabilitiesRealQEMU(t *testing.T) {
	if testing.Short() {
		t.Skip("starts QEMU")
	}
	emu := deps.Command(t, "qemu-system-x86_64")
	h, err := Probe(context.Background(), Options{HostUUID: testUUID, Emulators: []string{emu}})
	if err != nil {
		t.Fatal(err)
	}
	virttypes := []string{"qemu"}
	if h.KVM() {
		virttypes = append(virttypes, "kvm")
	}
	for _, vt := range virttypes {
		for _, m := range []string{"", "q35"} {
			t0 := time.Now()
			doc, err := h.DomainCapabilities("", "x86_64", m, vt)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("virttype %s machine %q: %v", vt, m, time.Since(t0))
			dc := parseDomCaps(t, doc)
			if dc.Domain != vt || !strings.HasPrefix(dc.Machine, "pc-") {
				t.Errorf("domain %q machine %q", dc.Domain, dc.Machine)
			}
			want := "no"
			if vt == "kvm" {
				want = "yes"
			}
			if pm := cpuMode(dc, "host-passthrough"); pm == nil || pm.Supported != want {
				t.Errorf("%s: host-passthrough = %+v", vt, pm)
			}
			validateDomCaps(t, doc)
		}
	}
	t0 := time.Now()
	doc, err := h.DomainCapabilities("", "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("default (cached): %v", time.Since(t0))
	wantDomain := "qemu"
	if h.KVM() {
		wantDomain = "kvm"
	}
	if dc := parseDomCaps(t, doc); dc.Domain != wantDomain || dc.VCPU.Max != 255 {
		t.Errorf("default: domain %q vcpu %d", dc.Domain, dc.VCPU.Max)
	}
}
