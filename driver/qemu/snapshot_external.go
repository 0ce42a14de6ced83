package qemu

import (
	"context"
	"fmt"
	"os"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver/qemu/domainxml"
	"github.com/govirtd/govirtd/driver/qemu/qemucmd"
	"github.com/govirtd/govirtd/driver/qemu/snapshot"
)

// External disk-only snapshots of a running domain, as libvirt 9.0 takes
// them with -blockdev: for each disk a new image node (the file, then
// blockdev-create formats it as qcow2 over the old image, then
// blockdev-add opens it with no backing yet), and one transaction of
// blockdev-snapshot actions that puts every overlay on top of its disk.
// The new nodes take the next free node indexes, which the live
// definition records (<source index='N'/>), the old image becoming the
// overlay's <backingStore>.

// overlay is one disk's new top image.
type overlay struct {
	disk            int
	path            string
	index           int
	storage, format string
	created, added  bool
}

// snapshotLiveExternal is qemuSnapshotCreateActiveExternal for disk-only
// snapshots.
func (d *Driver) snapshotLiveExternal(ctx context.Context, dom *domain, def *libvirtxml.DomainSnapshot, reuse bool) (err error) {
	mon, err := dom.monitor()
	if err != nil {
		return err
	}
	dom.mu.Lock()
	live, config := dom.live, dom.def
	dom.mu.Unlock()
	nodes, err := mon.QueryNamedBlockNodes(ctx)
	if err != nil {
		return fmt.Errorf("query block nodes: %w", err)
	}
	sizes := map[string]int64{}
	for _, n := range nodes {
		sizes[n.NodeName] = n.Image.VirtualSize
	}
	next := maxImageIndex(live) + 1
	var ovs []*overlay
	defer func() {
		if err == nil {
			return
		}
		for _, o := range ovs {
			if o.added {
				mon.BlockdevDel(context.Background(), o.format)
			}
			mon.BlockdevDel(context.Background(), o.storage)
			if o.created {
				os.Remove(o.path)
			}
		}
	}()
	for i, sd := range snapDisks(def) {
		if sd.Snapshot != snapshot.LocationExternal {
			continue
		}
		disk := &live.Devices.Disks[i]
		o := &overlay{disk: i, path: sd.Source.File.File, index: next}
		next++
		o.storage, o.format = qemucmd.BlockNodeNames(o.index)
		ovs = append(ovs, o)
		if !reuse {
			f, err := os.OpenFile(o.path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
			if err != nil {
				return compat.Errorf(libvirt.ErrSystemError, compat.FromQEMU, "failed to create image file '%s': %v", o.path, unwrapSyscall(err))
			}
			f.Close()
			o.created = true
		}
		cache := cacheProps(disk)
		storage := map[string]any{"driver": "file", "filename": o.path, "node-name": o.storage, "auto-read-only": true, "discard": "unmap"}
		format := map[string]any{"node-name": o.format, "read-only": false, "driver": "qcow2", "file": o.storage, "backing": nil}
		if cache != nil {
			storage["cache"], format["cache"] = cache, cache
		}
		if err := mon.Run(ctx, "blockdev-add", storage, nil); err != nil {
			return fmt.Errorf("add image node for %s: %w", o.path, err)
		}
		if !reuse {
			old := qemucmd.DiskFormatNode(live, i)
			opts := map[string]any{"driver": "qcow2", "file": o.storage, "size": sizes[old],
				"backing-file": diskPath(disk), "backing-fmt": diskFormat(disk)}
			if err := runBlockdevCreate(ctx, dom, "create-"+o.format, opts); err != nil {
				return err
			}
		}
		if err := mon.Run(ctx, "blockdev-add", format, nil); err != nil {
			return fmt.Errorf("add format node for %s: %w", o.path, err)
		}
		o.added = true
	}
	type action struct {
		Type string            `json:"type"`
		Data map[string]string `json:"data"`
	}
	var actions []action
	for _, o := range ovs {
		actions = append(actions, action{Type: "blockdev-snapshot", Data: map[string]string{"node": qemucmd.DiskFormatNode(live, o.disk), "overlay": o.format}})
	}
	if err := mon.Run(ctx, "transaction", map[string]any{"actions": actions}, nil); err != nil {
		return compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "%v", err)
	}
	// QEMU now writes to the overlays: from here on only forward.
	newLive, cerr := cloneDef(live)
	if cerr != nil {
		return nil
	}
	for _, o := range ovs {
		stackOverlay(&newLive.Devices.Disks[o.disk], o.path, o.index)
	}
	if err := d.saveLive(dom, live, newLive); err != nil {
		d.log.Warn("cannot save the status after a snapshot", "domain", dom.name, "err", err)
	}
	if config != nil {
		newConfig, err := cloneDef(config)
		if err != nil {
			return nil
		}
		changed := false
		for _, o := range ovs {
			target := diskTarget(&live.Devices.Disks[o.disk])
			for k := range disksOf(newConfig) {
				pd := &newConfig.Devices.Disks[k]
				// Only a persistent disk with the same image changes.
				if pd.Target != nil && pd.Target.Dev == target && diskPath(pd) == diskPath(&live.Devices.Disks[o.disk]) {
					stackPersistent(pd, o.path)
					changed = true
				}
			}
		}
		if changed {
			if err := d.saveConfig(dom, config, newConfig); err != nil {
				d.log.Warn("cannot save the definition after a snapshot", "domain", dom.name, "err", err)
			}
		}
	}
	return nil
}

// stackPersistent makes path a persistent disk's top image, recording the
// old one as its backing store as libvirt does (the rest of the chain is
// read from the images when the domain starts).
func stackPersistent(disk *libvirtxml.DomainDisk, path string) {
	bs := &libvirtxml.DomainDiskBackingStore{
		Format:       &libvirtxml.DomainDiskFormat{Type: diskFormat(disk)},
		Source:       &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: diskPath(disk)}},
		BackingStore: disk.BackingStore,
	}
	setDiskImage(disk, path)
	disk.BackingStore = bs
}

// stackOverlay makes path (node index idx) a live disk's top image, the
// old one its backing store.
func stackOverlay(disk *libvirtxml.DomainDisk, path string, idx int) {
	old := disk.Source
	bs := &libvirtxml.DomainDiskBackingStore{
		Index:        old.Index,
		Format:       &libvirtxml.DomainDiskFormat{Type: diskFormat(disk)},
		Source:       &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: diskPath(disk)}},
		BackingStore: disk.BackingStore,
	}
	if bs.BackingStore == nil {
		bs.BackingStore = &libvirtxml.DomainDiskBackingStore{}
	}
	disk.Source = &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: path}, Index: uint(idx)}
	if disk.Driver == nil {
		disk.Driver = &libvirtxml.DomainDiskDriver{Name: "qemu"}
	}
	disk.Driver.Type = "qcow2"
	disk.BackingStore = bs
}

// maxImageIndex is the highest node index of the live definition's images.
func maxImageIndex(live *libvirtxml.Domain) int {
	m := 0
	for i, disk := range disksOf(live) {
		m = max(m, qemucmd.DiskNodeIndex(live, i))
		for bs := disk.BackingStore; !domainxml.EmptyBackingStore(bs); bs = bs.BackingStore {
			m = max(m, int(bs.Index))
		}
	}
	return m
}

// cacheProps are the block layer cache options of a disk's cache mode,
// as the command line gives its images.
func cacheProps(disk *libvirtxml.DomainDisk) map[string]bool {
	mode := ""
	if disk.Driver != nil {
		mode = disk.Driver.Cache
	}
	switch mode {
	case "none":
		return map[string]bool{"direct": true, "no-flush": false}
	case "writethrough", "writeback":
		return map[string]bool{"direct": false, "no-flush": false}
	case "directsync":
		return map[string]bool{"direct": true, "no-flush": false}
	case "unsafe":
		return map[string]bool{"direct": false, "no-flush": true}
	}
	return nil
}

// runBlockdevCreate runs a blockdev-create job to its end (such jobs
// wait for job-dismiss, so their error is never missed).
func runBlockdevCreate(ctx context.Context, dom *domain, id string, options map[string]any) error {
	mon, err := dom.monitor()
	if err != nil {
		return err
	}
	if err := mon.Run(ctx, "blockdev-create", map[string]any{"job-id": id, "options": options}, nil); err != nil {
		return fmt.Errorf("blockdev-create: %w", err)
	}
	if err := waitJob(ctx, dom, id, "concluded"); err != nil {
		return compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "blockdev-create job '%s' failed: %v", id, err)
	}
	return nil
}
