package caps

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/test/deps"
)

const testUUID = "8f6c2a4e-3b1d-4e5f-9a7b-0c1d2e3f4a5b"

// fakeQEMU writes a shell script named qemu-system-x86_64 that replays the
// captured QEMU 7.2 outputs; qmpBody is the shell run for a -qmp call.
func fakeQEMU(t *testing.T, qmpBody string) string {
	t.Helper()
	td, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	script := `#!/bin/sh
for a in "$@"; do
  case "$a" in
    -version) cat '` + td + `/x86_64-version.txt'; exit 0 ;;
    -qmp) cat >/dev/null; ` + qmpBody + ` ;;
    help) cat '` + td + `/x86_64-machine-help.txt'; exit 0 ;;
  esac
done
exit 1
`
	p := filepath.Join(t.TempDir(), "qemu-system-x86_64")
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func parseCaps(t *testing.T, doc string) *libvirtxml.Caps {
	t.Helper()
	c := &libvirtxml.Caps{}
	if err := c.Unmarshal(doc); err != nil {
		t.Fatalf("capabilities XML does not parse: %v\n%s", err, doc)
	}
	return c
}

func guestFor(c *libvirtxml.Caps, arch string) *libvirtxml.CapsGuest {
	for i := range c.Guests {
		if c.Guests[i].Arch.Name == arch {
			return &c.Guests[i]
		}
	}
	return nil
}

func machineNamed(g *libvirtxml.CapsGuest, name string) *libvirtxml.CapsGuestMachine {
	for i := range g.Arch.Machines {
		if g.Arch.Machines[i].Name == name {
			return &g.Arch.Machines[i]
		}
	}
	return nil
}

func TestProbeWithFixtures(t *testing.T) {
	emu := fakeQEMU(t, `cat '`+mustAbs(t, "testdata/x86_64-qmp-query-machines.txt")+`'; exit 0`)
	h, err := Probe(context.Background(), Options{
		HostUUID:  strings.ToUpper(testUUID),
		Emulators: []string{emu},
		SysRoot:   "testdata/sysroot-2node",
	})
	if err != nil {
		t.Fatal(err)
	}
	if w := h.Warnings(); len(w) != 0 {
		t.Errorf("warnings: %v", w)
	}
	if h.QEMUVersion() != 7002022 || h.DefaultEmulator() != emu || h.KVM() {
		t.Errorf("version %d emulator %q kvm %v", h.QEMUVersion(), h.DefaultEmulator(), h.KVM())
	}
	if got := h.DefaultMachine("x86_64"); got != "pc-i440fx-7.2" {
		t.Errorf("DefaultMachine = %q", got)
	}
	if got, ok := h.CanonicalMachine("x86_64", "q35"); !ok || got != "pc-q35-7.2" {
		t.Errorf("CanonicalMachine(q35) = %q, %v", got, ok)
	}
	if got, ok := h.CanonicalMachine("i686", "pc-q35-2.7"); !ok || got != "pc-q35-2.7" {
		t.Errorf("CanonicalMachine(pc-q35-2.7) = %q, %v", got, ok)
	}
	if _, ok := h.CanonicalMachine("x86_64", "virt"); ok {
		t.Error("unknown machine resolved")
	}

	doc := h.CapabilitiesXML()
	c := parseCaps(t, doc)
	if c.Host.UUID != testUUID {
		t.Errorf("uuid = %q", c.Host.UUID)
	}
	mf := c.Host.MigrationFeatures
	if mf == nil || mf.Live == nil || mf.URITransports == nil ||
		strings.Join(mf.URITransports.URI, ",") != "tcp,rdma" {
		t.Errorf("migration_features = %+v", mf)
	}
	if c.Host.IOMMU == nil || c.Host.IOMMU.Support != "yes" || c.Host.PowerManagement == nil {
		t.Errorf("iommu %+v power %+v", c.Host.IOMMU, c.Host.PowerManagement)
	}
	cpu := c.Host.CPU
	if cpu == nil || cpu.Arch == "" || cpu.Vendor != "Intel" || cpu.Topology == nil ||
		*cpu.Topology != (libvirtxml.CapsHostCPUTopology{Sockets: 1, Dies: 1, Cores: 2, Threads: 2}) ||
		len(cpu.PageSizes) != 3 || cpu.Microcode == nil || cpu.Microcode.Version != 0x5003604 {
		t.Errorf("host cpu = %+v", cpu)
	}
	cells := c.Host.NUMA.Cells
	if cells.Num != 2 || len(cells.Cells) != 2 {
		t.Fatalf("cells = %+v", cells)
	}
	cell := cells.Cells[0]
	if cell.Memory.Size != 8159168 || cell.Memory.Unit != "KiB" || len(cell.PageInfo) != 3 ||
		len(cell.Distances.Siblings) != 2 || cell.CPUS.Num != 4 ||
		cell.CPUS.CPUs[1].Siblings != "1,3" || *cell.CPUS.CPUs[1].CoreID != 1 || *cell.CPUS.CPUs[1].DieID != 0 {
		t.Errorf("cell 0 = %+v", cell)
	}
	if len(c.Host.SecModel) != 2 || c.Host.SecModel[0].Name != "none" || c.Host.SecModel[1].Name != "dac" ||
		c.Host.SecModel[1].DOI != "0" || len(c.Host.SecModel[1].Labels) != 2 ||
		c.Host.SecModel[1].Labels[0] != (libvirtxml.CapsHostSecModelLabel{Type: "kvm", Value: "+0:+0"}) {
		t.Errorf("secmodels = %+v", c.Host.SecModel)
	}

	// libvirt lists guests in its arch enum order, i686 first.
	if len(c.Guests) != 2 || c.Guests[0].Arch.Name != "i686" || c.Guests[1].Arch.Name != "x86_64" {
		t.Fatalf("guests = %+v", c.Guests)
	}
	for _, g := range c.Guests {
		if g.OSType != "hvm" || g.Arch.Emulator != emu || len(g.Arch.Domains) != 1 || g.Arch.Domains[0].Type != "qemu" {
			t.Errorf("guest %s = %+v", g.Arch.Name, g.Arch)
		}
		if g.Arch.Machines[0].Name != "pc-i440fx-7.2" || g.Arch.Machines[1].Name != "pc" ||
			g.Arch.Machines[1].Canonical != "pc-i440fx-7.2" || g.Arch.Machines[1].MaxCPUs != 255 {
			t.Errorf("guest %s first machines = %+v", g.Arch.Name, g.Arch.Machines[:2])
		}
		f := g.Features
		if f == nil || f.ACPI == nil || f.ACPI.Default != "on" || f.ACPI.Toggle != "yes" ||
			f.APIC == nil || f.APIC.Toggle != "no" || f.CPUSelection == nil || f.DeviceBoot == nil ||
			f.DiskSnapshot == nil || f.DiskSnapshot.Default != "on" || f.DiskSnapshot.Toggle != "no" ||
			(f.PAE != nil) != (g.Arch.Name == "i686") || (f.NonPAE != nil) != (g.Arch.Name == "i686") {
			t.Errorf("guest %s features = %+v", g.Arch.Name, f)
		}
	}
	x := guestFor(c, "x86_64")
	if x.Arch.WordSize != "64" || guestFor(c, "i686").Arch.WordSize != "32" {
		t.Error("wrong word sizes")
	}
	if m := machineNamed(x, "q35"); m == nil || m.Canonical != "pc-q35-7.2" || m.MaxCPUs != 288 {
		t.Errorf("q35 = %+v", m)
	}
	if m := machineNamed(x, "pc-i440fx-1.4"); m == nil || m.Deprecated != "yes" {
		t.Errorf("pc-i440fx-1.4 = %+v", m)
	}

	// Nothing is lost between our XML and libvirtxml's view of it.
	again, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if again+"\n" != doc {
		t.Errorf("XML does not round-trip through libvirtxml:\n%s\n----\n%s", doc, again)
	}

	// Caps hands out independent copies.
	c1 := h.Caps()
	c1.Guests = nil
	c1.Host.UUID = "changed"
	if c2 := h.Caps(); len(c2.Guests) != 2 || c2.Host.UUID != testUUID {
		t.Error("Caps() copies share state")
	}
	ms := h.Machines("x86_64")
	ms[0].Name = "changed"
	if h.Machines("x86_64")[0].Name != "pc-i440fx-7.2" {
		t.Error("Machines() copies share state")
	}
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestProbeFallsBackToMachineHelp(t *testing.T) {
	emu := fakeQEMU(t, `exit 1`)
	h, err := Probe(context.Background(), Options{HostUUID: testUUID, Emulators: []string{emu}, SysRoot: "testdata/sysroot-2node"})
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Warnings()) == 0 {
		t.Error("fallback not reported")
	}
	ms := h.Machines("x86_64")
	if len(ms) != 61 || ms[0].Name != "pc-i440fx-7.2" || ms[1] != (Machine{Name: "pc", Canonical: "pc-i440fx-7.2", MaxCPUs: 255, Default: true}) {
		t.Errorf("machines from help: %d, first %+v", len(ms), ms[:2])
	}
}

func TestProbeErrors(t *testing.T) {
	if _, err := Probe(context.Background(), Options{}); err == nil {
		t.Error("missing UUID accepted")
	}
	broken := filepath.Join(t.TempDir(), "qemu-system-x86_64")
	if err := os.WriteFile(broken, []byte("#!/bin/sh\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Probe(context.Background(), Options{HostUUID: testUUID, Emulators: []string{broken}, SysRoot: "testdata/sysroot-2node"}); err == nil {
		t.Error("broken explicit emulator accepted")
	}

	hung := fakeQEMU(t, `exec sleep 30`)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := Probe(ctx, Options{HostUUID: testUUID, Emulators: []string{hung}, SysRoot: "testdata/sysroot-2node"}); err == nil {
		t.Error("hung emulator accepted")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Probe ignored the context deadline: took %v", d)
	}
}

// TestProbeRealHost runs the real QEMU of this machine.
func TestProbeRealHost(t *testing.T) {
	deps.Require(t, "qemu-system-x86_64")
	start := time.Now()
	h, err := Probe(context.Background(), Options{HostUUID: testUUID})
	elapsed := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Probe took %v (kvm=%v, warnings=%v)", elapsed, h.KVM(), h.Warnings())

	c := parseCaps(t, h.CapabilitiesXML())
	x := guestFor(c, "x86_64")
	if x == nil {
		t.Fatal("no x86_64 guest")
	}
	if x.Arch.Emulator != h.DefaultEmulator() || h.QEMUVersion() < 1_000_000 {
		t.Errorf("emulator %q version %d", x.Arch.Emulator, h.QEMUVersion())
	}
	pc := machineNamed(x, "pc")
	if pc == nil || !strings.HasPrefix(pc.Canonical, "pc-i440fx-") || machineNamed(x, pc.Canonical) == nil {
		t.Errorf("machine pc = %+v", pc)
	}
	hasQEMU := false
	for _, d := range x.Arch.Domains {
		hasQEMU = hasQEMU || d.Type == "qemu"
	}
	if !hasQEMU {
		t.Errorf("no domain type qemu: %+v", x.Arch.Domains)
	}
	if guestFor(c, "i686") == nil {
		t.Error("no i686 guest")
	}
	if got := h.NodeInfo().CPUs; int(got) != runtime.NumCPU() {
		t.Errorf("NodeInfo CPUs = %d, runtime.NumCPU = %d", got, runtime.NumCPU())
	}
	n := h.NodeInfo()
	if n.Nodes*n.Sockets*n.Cores*n.Threads != n.CPUs || n.Memory == 0 || n.Model == "" {
		t.Errorf("NodeInfo = %+v", n)
	}
}

// TestCapsValidateAgainstLibvirtSchema checks the document against the
// capability.rng shipped with the installed libvirt (Debian's 9.0 here).
func TestCapsValidateAgainstLibvirtSchema(t *testing.T) {
	validator := deps.Command(t, "virt-xml-validate")
	deps.Require(t, "xmllint", "/usr/share/libvirt/schemas/capability.rng")
	emu := fakeQEMU(t, `cat '`+mustAbs(t, "testdata/x86_64-qmp-query-machines.txt")+`'; exit 0`)
	h, err := Probe(context.Background(), Options{HostUUID: testUUID, Emulators: []string{emu}, SysRoot: "testdata/sysroot-2node"})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "caps.xml")
	if err := os.WriteFile(p, []byte(h.CapabilitiesXML()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(validator, p, "capability").CombinedOutput(); err != nil {
		t.Errorf("libvirt schema rejects our capabilities: %v\n%s", err, out)
	}
}
