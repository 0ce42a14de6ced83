package domainxml

import "libvirt.org/go/libvirtxml"

// PrepareHotplugDisk does for a disk attached to a running domain what
// PrepareLive does for the disks it starts with: it records the disk's
// backing chain and numbers its images. The numbers continue after the
// highest in use (libvirt's per-domain node name counter), so the other
// disks keep their block node names.
func PrepareHotplugDisk(dv *libvirtxml.DomainDeviceList, disk *libvirtxml.DomainDisk, rt Runtime) error {
	if err := prepareChain(disk, rt); err != nil {
		return err
	}
	next := uint(1)
	for i := range dv.Disks {
		d := &dv.Disks[i]
		if d.Source != nil && d.Source.Index >= next {
			next = d.Source.Index + 1
		}
		for bs := d.BackingStore; !EmptyBackingStore(bs); bs = bs.BackingStore {
			if bs.Index >= next {
				next = bs.Index + 1
			}
		}
	}
	if disk.Source != nil && (disk.Source.File != nil && disk.Source.File.File != "" || disk.Source.Block != nil && disk.Source.Block.Dev != "") {
		disk.Source.Index = next
	}
	for bs := disk.BackingStore; !EmptyBackingStore(bs); bs = bs.BackingStore {
		next++
		bs.Index = next
	}
	return nil
}

// RandomMAC is a MAC address as libvirt generates one for a NIC without
// (virDomainNetGenerateMAC with the QEMU prefix 52:54:00).
func RandomMAC() string { return randomMAC() }
