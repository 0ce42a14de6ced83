package qemu

import (
	"context"
	"strconv"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver"
	"github.com/govirtd/govirtd/driver/qemu/qemucmd"
	"github.com/govirtd/govirtd/driver/qemu/qmp"
)

// BlockStats implements driver.DomainStats as libvirt's
// qemuDomainBlocksStatsGather: a running domain's counters from
// query-blockstats for the disk named by target or source path, or summed
// over every disk for "".
func (d *Driver) BlockStats(ctx context.Context, ref libvirt.Domain, name string) (driver.BlockStats, error) {
	dom, err := d.get(ref)
	if err != nil {
		return driver.BlockStats{}, err
	}
	mon, err := dom.monitor()
	if err != nil {
		return driver.BlockStats{}, err
	}
	def := dom.current()
	idx := -1
	if name != "" {
		if idx = findDisk(def, name); idx < 0 {
			return driver.BlockStats{}, compat.Errorf(libvirt.ErrInvalidArg, compat.FromQEMU, "invalid path: %s", name)
		}
	}
	entries, err := mon.QueryBlockstats(ctx)
	if err != nil {
		return driver.BlockStats{}, err
	}
	if idx < 0 {
		var sum driver.BlockStats
		for _, e := range entries {
			addBlockStats(&sum, e.Stats)
		}
		return sum, nil
	}
	e := diskEntry(def, idx, entries)
	if e == nil {
		return driver.BlockStats{}, compat.Errorf(libvirt.ErrInternalError, compat.FromQEMU, "cannot find statistics for device '%s'", diskQOMName(&def.Devices.Disks[idx]))
	}
	var st driver.BlockStats
	addBlockStats(&st, e.Stats)
	return st, nil
}

func addBlockStats(to *driver.BlockStats, s qmp.BlockDeviceStats) {
	to.RdReq += s.RdOperations
	to.RdBytes += s.RdBytes
	to.RdTotalTimes += s.RdTotalTimeNs
	to.WrReq += s.WrOperations
	to.WrBytes += s.WrBytes
	to.WrTotalTimes += s.WrTotalTimeNs
	to.FlushReq += s.FlushOperations
	to.FlushTotalTimes += s.FlushTotalTimeNs
}

// findDisk is virDomainDiskByName: the index of the disk whose target or
// source is name, -1 if none.
func findDisk(def *libvirtxml.Domain, name string) int {
	if def == nil || def.Devices == nil {
		return -1
	}
	for i, disk := range def.Devices.Disks {
		if disk.Target != nil && disk.Target.Dev == name {
			return i
		}
		if p := diskPath(&disk); p != "" && p == name {
			return i
		}
	}
	return -1
}

// diskPath is a disk's local source: its file or block device.
func diskPath(disk *libvirtxml.DomainDisk) string {
	switch src := disk.Source; {
	case src == nil:
	case src.File != nil:
		return src.File.File
	case src.Block != nil:
		return src.Block.Dev
	}
	return ""
}

// diskQOMName is the name query-blockstats gives a disk's device
// (libvirt's qomName): the virtio-blk backend's QOM path, or the id of
// other devices.
func diskQOMName(disk *libvirtxml.DomainDisk) string {
	alias := ""
	if disk.Alias != nil {
		alias = disk.Alias.Name
	}
	if disk.Target != nil && disk.Target.Bus == "virtio" {
		return "/machine/peripheral/" + alias + "/virtio-backend"
	}
	return alias
}

// diskEntry finds disk idx's query-blockstats entry, by its format node
// (the node names qemucmd gives) or by its device.
func diskEntry(def *libvirtxml.Domain, idx int, entries []qmp.BlockStats) *qmp.BlockStats {
	disk := &def.Devices.Disks[idx]
	node := qemucmd.DiskFormatNode(def, idx)
	qom := diskQOMName(disk)
	for i := range entries {
		e := &entries[i]
		if e.NodeName == node || e.QDev == qom || (disk.Alias != nil && e.QDev == disk.Alias.Name) {
			return e
		}
	}
	return nil
}

// blockGroup adds the VIR_DOMAIN_STATS_BLOCK group as libvirt's
// qemuDomainGetStatsBlock does for disks without backing chains (govirtd
// has no others, so --backing changes nothing): block.count, then per
// disk with a source its name, path, backingIndex (running only), the I/O
// counters and the sizes. A running domain's sizes come from QEMU:
// allocation is the highest offset written, capacity the virtual size,
// physical what the image occupies; a stopped domain's are read from the
// image as virsh domblkinfo reports them. Statistics QEMU cannot give are
// left out rather than made up.
func (d *Driver) blockGroup(ctx context.Context, def *libvirtxml.Domain, mon *qmp.Monitor, add func(string, *libvirt.TypedParamValue)) {
	var entries []qmp.BlockStats
	var blocks []qmp.BlockInfo
	if mon != nil {
		var err1, err2 error
		entries, err1 = mon.QueryBlockstats(ctx)
		blocks, err2 = mon.QueryBlock(ctx)
		if err1 != nil || err2 != nil {
			// As libvirt: names and paths only.
			entries, blocks = nil, nil
		}
	}
	var disks []libvirtxml.DomainDisk
	if def != nil && def.Devices != nil {
		disks = def.Devices.Disks
	}
	var shown []int
	for i := range disks {
		// An empty drive (a CD-ROM without medium) is not counted.
		if diskPath(&disks[i]) != "" {
			shown = append(shown, i)
		}
	}
	add("block.count", libvirt.NewTypedParamValueUint(uint32(len(shown))))
	for n, i := range shown {
		disk := &disks[i]
		p := "block." + strconv.Itoa(n) + "."
		ull := func(k string, v int64) { add(p+k, libvirt.NewTypedParamValueUllong(uint64(v))) }
		if disk.Target != nil {
			add(p+"name", libvirt.NewTypedParamValueString(disk.Target.Dev))
		}
		path := diskPath(disk)
		add(p+"path", libvirt.NewTypedParamValueString(path))
		if mon == nil {
			format := ""
			if disk.Driver != nil {
				format = disk.Driver.Type
			}
			capacity, alloc, phys, err := imageLimits(path, format)
			if err != nil {
				continue
			}
			for _, kv := range []struct {
				k string
				v uint64
			}{{"allocation", alloc}, {"capacity", capacity}, {"physical", phys}} {
				if kv.v != 0 {
					ull(kv.k, int64(kv.v))
				}
			}
			continue
		}
		add(p+"backingIndex", libvirt.NewTypedParamValueUint(uint32(qemucmd.DiskNodeIndex(def, i))))
		e := diskEntry(def, i, entries)
		if e == nil {
			continue
		}
		s := e.Stats
		ull("rd.reqs", s.RdOperations)
		ull("rd.bytes", s.RdBytes)
		ull("rd.times", s.RdTotalTimeNs)
		ull("wr.reqs", s.WrOperations)
		ull("wr.bytes", s.WrBytes)
		ull("wr.times", s.WrTotalTimeNs)
		ull("fl.reqs", s.FlushOperations)
		ull("fl.times", s.FlushTotalTimeNs)
		// The storage node's highest write is how far the file was written.
		highest := s.WrHighestOffset
		if e.Parent != nil {
			highest = e.Parent.Stats.WrHighestOffset
		}
		ull("allocation", highest)
		var physical int64
		if img := blockImage(blocks, e); img != nil {
			if img.VirtualSize != 0 {
				ull("capacity", img.VirtualSize)
			}
			if img.ActualSize != nil {
				physical = *img.ActualSize
			}
		}
		// Nothing allocated (or unknown): libvirt falls back to the
		// file's size (qemuDomainStorageUpdatePhysical).
		if physical == 0 {
			if _, _, phys, err := imageLimits(path, ""); err == nil {
				physical = int64(phys)
			}
		}
		if physical != 0 {
			ull("physical", physical)
		}
	}
}

// blockImage finds the query-block image of a query-blockstats entry.
func blockImage(blocks []qmp.BlockInfo, e *qmp.BlockStats) *qmp.ImageInfo {
	for _, b := range blocks {
		if b.Inserted == nil {
			continue
		}
		if (e.QDev != "" && b.QDev == e.QDev) || (e.NodeName != "" && b.Inserted.NodeName == e.NodeName) {
			return b.Inserted.Image
		}
	}
	return nil
}
