package caps

import (
	"strconv"

	"libvirt.org/go/libvirtxml"
)

// guestSpec is one <guest> to emit.
type guestSpec struct {
	arch     string
	wordsize int
	emulator string
	machines []Machine
}

// cpuVendors maps CPUID vendor strings to the vendor names of libvirt's CPU
// map, which is what <host><cpu><vendor> carries.
var cpuVendors = map[string]string{
	"GenuineIntel": "Intel",
	"AuthenticAMD": "AMD",
	"HygonGenuine": "Hygon",
}

// buildCaps assembles the capabilities document in the shape libvirt 9.0's
// QEMU driver produces.
func buildCaps(uuid string, hi *hostInfo, guests []guestSpec, kvm bool) *libvirtxml.Caps {
	c := &libvirtxml.Caps{}
	c.Host.UUID = uuid
	c.Host.CPU = hostCPU(hi)
	// We offer no host suspend targets (NODE_SUSPEND_FOR_DURATION is not
	// implemented), and libvirt prints an empty element in that case.
	c.Host.PowerManagement = &libvirtxml.CapsHostPowerManagement{}
	c.Host.IOMMU = &libvirtxml.CapsHostIOMMU{Support: "no"}
	if hi.iommu {
		c.Host.IOMMU.Support = "yes"
	}
	c.Host.MigrationFeatures = &libvirtxml.CapsHostMigrationFeatures{
		Live:          &libvirtxml.CapsHostMigrationLive{},
		URITransports: &libvirtxml.CapsHostMigrationURITransports{URI: []string{"tcp", "rdma"}},
	}
	c.Host.NUMA = numaTopology(hi)
	// Security drivers as libvirtd runs them with security_driver unset and
	// no SELinux/AppArmor: the "none" stack base plus DAC as root:root.
	c.Host.SecModel = []libvirtxml.CapsHostSecModel{
		{Name: "none", DOI: "0"},
		{Name: "dac", DOI: "0", Labels: []libvirtxml.CapsHostSecModelLabel{
			{Type: "kvm", Value: "+0:+0"},
			{Type: "qemu", Value: "+0:+0"},
		}},
	}
	for _, g := range guests {
		c.Guests = append(c.Guests, guest(g, kvm))
	}
	return c
}

// hostCPU describes the host CPU. libvirt additionally names the closest
// model of its CPU map and lists the extra features; that needs the whole
// CPU map and CPUID decoding, so we report what /proc/cpuinfo gives cheaply.
// virsh never interprets this element.
func hostCPU(hi *hostInfo) *libvirtxml.CapsHostCPU {
	cpu := &libvirtxml.CapsHostCPU{Arch: hi.arch}
	isX86 := hi.arch == "x86_64" || hi.arch == "i686"
	if isX86 {
		cpu.Vendor = cpuVendors[hi.cpu.vendorID]
		if hi.cpu.microcode != nil {
			cpu.Microcode = &libvirtxml.CapsHostCPUMicrocode{Version: int(*hi.cpu.microcode)}
		}
		if hi.cpu.family != 0 {
			cpu.Signature = &libvirtxml.CapsHostCPUSignature{
				Family:   hi.cpu.family,
				Model:    hi.cpu.model,
				Stepping: hi.cpu.stepping,
			}
		}
	}
	// libvirt copies the NODE_GET_INFO topology here, with one die per
	// socket (libvirt 9.0 does not detect dies for this element).
	cpu.Topology = &libvirtxml.CapsHostCPUTopology{
		Sockets: int(hi.node.Sockets),
		Dies:    1,
		Cores:   int(hi.node.Cores),
		Threads: int(hi.node.Threads),
	}
	for _, sz := range hi.pageSizes {
		cpu.PageSizes = append(cpu.PageSizes, libvirtxml.CapsHostCPUPageSize{Size: sz, Unit: "KiB"})
	}
	return cpu
}

func numaTopology(hi *hostInfo) *libvirtxml.CapsHostNUMATopology {
	cells := &libvirtxml.CapsHostNUMACells{Num: uint(len(hi.cells))}
	for _, hc := range hi.cells {
		cell := libvirtxml.CapsHostNUMACell{ID: hc.id}
		if hc.memKiB > 0 {
			cell.Memory = &libvirtxml.CapsHostNUMAMemory{Size: hc.memKiB, Unit: "KiB"}
		}
		for _, p := range hc.pages {
			cell.PageInfo = append(cell.PageInfo, libvirtxml.CapsHostNUMAPageInfo{Size: p.sizeKiB, Unit: "KiB", Count: p.count})
		}
		if len(hc.distances) > 0 {
			cell.Distances = &libvirtxml.CapsHostNUMADistances{}
			for _, d := range hc.distances {
				cell.Distances.Siblings = append(cell.Distances.Siblings, libvirtxml.CapsHostNUMASibling{ID: d.id, Value: d.value})
			}
		}
		cpus := &libvirtxml.CapsHostNUMACPUs{Num: uint(len(hc.cpus))}
		for _, t := range hc.cpus {
			c := libvirtxml.CapsHostNUMACPU{ID: t.id}
			// The schema makes these attributes all-or-nothing.
			if t.known {
				c.SocketID, c.DieID, c.CoreID = intPtr(t.socket), intPtr(t.die), intPtr(t.core)
				c.Siblings = formatCPUList(t.siblings)
			}
			cpus.CPUs = append(cpus.CPUs, c)
		}
		cell.CPUS = cpus
		cells.Cells = append(cells.Cells, cell)
	}
	return &libvirtxml.CapsHostNUMATopology{Cells: cells}
}

func intPtr(v int) *int { return &v }

// guest builds one <guest>; features follow libvirt's
// virQEMUCapsInitGuestFromBinary for x86.
func guest(g guestSpec, kvm bool) libvirtxml.CapsGuest {
	cg := libvirtxml.CapsGuest{
		OSType: "hvm",
		Arch: libvirtxml.CapsGuestArch{
			Name:     g.arch,
			WordSize: strconv.Itoa(g.wordsize),
			Emulator: g.emulator,
		},
	}
	for _, m := range g.machines {
		gm := libvirtxml.CapsGuestMachine{Name: m.Name, MaxCPUs: m.MaxCPUs, Canonical: m.Canonical}
		if m.Deprecated {
			gm.Deprecated = "yes"
		}
		cg.Arch.Machines = append(cg.Arch.Machines, gm)
	}
	cg.Arch.Domains = []libvirtxml.CapsGuestDomain{{Type: "qemu"}}
	if kvm {
		cg.Arch.Domains = append(cg.Arch.Domains, libvirtxml.CapsGuestDomain{Type: "kvm"})
	}
	f := &libvirtxml.CapsGuestFeatures{
		CPUSelection: &libvirtxml.CapsGuestFeatureCPUSelection{},
		DeviceBoot:   &libvirtxml.CapsGuestFeatureDeviceBoot{},
		DiskSnapshot: &libvirtxml.CapsGuestFeatureDiskSnapshot{Default: "on", Toggle: "no"},
	}
	if g.arch == "i686" || g.arch == "x86_64" {
		f.ACPI = &libvirtxml.CapsGuestFeatureACPI{Default: "on", Toggle: "yes"}
		f.APIC = &libvirtxml.CapsGuestFeatureAPIC{Default: "on", Toggle: "no"}
	}
	if g.arch == "i686" {
		f.PAE = &libvirtxml.CapsGuestFeaturePAE{}
		f.NonPAE = &libvirtxml.CapsGuestFeatureNonPAE{}
	}
	cg.Features = f
	return cg
}
