package qemu

import (
	"context"
	"fmt"
	"os"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver/qemu/domainxml"
	"github.com/govirtd/govirtd/driver/qemu/qemucmd"
	"github.com/govirtd/govirtd/driver/qemu/snapshot"
)

// Deleting an external snapshot, as libvirt 9.0 does: the data written
// after it (its overlay) is committed into the image it was taken on,
// the overlay leaves the disk's chain and is removed. A running domain
// commits with block-commit jobs (an active commit and a pivot when the
// overlay is the disk's top image); a shut off one with qemu-img commit
// (and a rebase of the image above, if any).

// chainImage is one image of a live disk's chain.
type chainImage struct {
	path, format string
	index        int
}

// liveChain lists a live disk's images from the top down.
func liveChain(live *libvirtxml.Domain, i int) []chainImage {
	disk := &live.Devices.Disks[i]
	out := []chainImage{{path: diskPath(disk), format: diskFormat(disk), index: qemucmd.DiskNodeIndex(live, i)}}
	for bs := disk.BackingStore; !domainxml.EmptyBackingStore(bs); bs = bs.BackingStore {
		im := chainImage{index: int(bs.Index), format: "raw"}
		if bs.Source != nil && bs.Source.File != nil {
			im.path = bs.Source.File.File
		}
		if bs.Format != nil {
			im.format = bs.Format.Type
		}
		out = append(out, im)
	}
	return out
}

// externalDeletePlan is, for one disk, which image of its chain the
// snapshot's overlay is (level) and where its data goes (the next one).
type externalDeletePlan struct {
	disk  int
	level int
	chain []chainImage
}

// planExternalDelete is qemuSnapshotDeleteExternalPrepare's checks.
func (d *Driver) planExternalDelete(dom *libvirtxml.Domain, domName string, def *libvirtxml.DomainSnapshot, active bool) ([]externalDeletePlan, error) {
	var plans []externalDeletePlan
	for _, sd := range snapDisks(def) {
		if sd.Snapshot != snapshot.LocationExternal {
			continue
		}
		idx := -1
		for i, disk := range disksOf(dom) {
			if disk.Target != nil && disk.Target.Dev == sd.Name {
				idx = i
			}
		}
		if idx < 0 {
			return nil, compat.Errorf(libvirt.ErrInvalidArg, compat.FromQEMU, "disk '%s' not found in domain", sd.Name)
		}
		var chain []chainImage
		if active {
			chain = liveChain(dom, idx)
		} else {
			disk := &dom.Devices.Disks[idx]
			chain = []chainImage{{path: diskPath(disk), format: diskFormat(disk)}}
			below, err := domainxml.BackingChain(diskPath(disk), diskFormat(disk))
			if err != nil {
				return nil, compat.Errorf(libvirt.ErrInternalError, compat.FromQEMU, "disk %s: %v", sd.Name, err)
			}
			for _, im := range below {
				chain = append(chain, chainImage{path: im.Path, format: im.Format})
			}
		}
		if sd.Source == nil || sd.Source.File == nil {
			return nil, compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "VM disk source and snapshot disk source are not the same")
		}
		level := -1
		for k, im := range chain {
			if im.path == sd.Source.File.File {
				level = k
				break
			}
		}
		if level < 0 {
			return nil, compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "VM disk source and snapshot disk source are not the same")
		}
		if level+1 >= len(chain) {
			return nil, compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "failed to find parent disk source in backing chain")
		}
		var parentDisk *libvirtxml.DomainDisk
		for k, disk := range disksOf(def.Domain) {
			if disk.Target != nil && disk.Target.Dev == sd.Name {
				parentDisk = &def.Domain.Devices.Disks[k]
			}
		}
		if parentDisk == nil {
			return nil, compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "failed to find disk '%s' in snapshot VM XML", sd.Name)
		}
		if diskPath(parentDisk) != chain[level+1].path {
			return nil, compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "snapshot VM disk source and parent disk source are not the same")
		}
		plans = append(plans, externalDeletePlan{disk: idx, level: level, chain: chain})
	}
	if p := snapshot.ParentName(def); p != "" {
		if ps, err := d.snaps.Get(domName, p); err == nil && !snapshot.IsExternal(ps) {
			return nil, compat.Errorf(libvirt.ErrOperationUnsupported, compat.FromQEMU, "deleting external snapshot that has internal snapshot as parent not supported")
		}
	}
	return plans, nil
}

// deleteExternal merges an external snapshot's overlays away. The caller
// holds dom's job and removes the metadata afterwards.
func (d *Driver) deleteExternal(ctx context.Context, dom *domain, domName string, def *libvirtxml.DomainSnapshot) error {
	dom.mu.Lock()
	active, live, config := dom.id != -1, dom.live, dom.def
	dom.mu.Unlock()
	cur := config
	if active {
		cur = live
	}
	plans, err := d.planExternalDelete(cur, domName, def, active)
	if err != nil {
		return err
	}
	if active {
		for _, p := range plans {
			if err := d.commitLive(ctx, dom, p); err != nil {
				return err
			}
		}
		return nil
	}
	changed, err := cloneDef(config)
	if err != nil {
		return err
	}
	for _, p := range plans {
		top, base := p.chain[p.level], p.chain[p.level+1]
		if err := runQemuImg(ctx, "commit", "-f", top.format, top.path); err != nil {
			return compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "block commit failed while deleting disk '%s' snapshot: '%v'", diskTarget(&changed.Devices.Disks[p.disk]), err)
		}
		unstackPersistent(&changed.Devices.Disks[p.disk], top.path, base)
		if p.level > 0 {
			above := p.chain[p.level-1]
			if err := runQemuImg(ctx, "rebase", "-u", "-f", above.format, "-b", base.path, "-F", base.format, above.path); err != nil {
				return err
			}
		}
		if err := os.Remove(top.path); err != nil {
			d.log.Warn("cannot remove a merged snapshot image", "path", top.path, "err", err)
		}
	}
	return d.saveConfig(dom, config, changed)
}

// commitLive merges one disk's overlay into the image below it in the
// running QEMU and takes it out of the live (and persistent) definition.
func (d *Driver) commitLive(ctx context.Context, dom *domain, p externalDeletePlan) error {
	mon, err := dom.monitor()
	if err != nil {
		return err
	}
	dom.mu.Lock()
	live, config := dom.live, dom.def
	dom.mu.Unlock()
	disk := &live.Devices.Disks[p.disk]
	top, base := p.chain[p.level], p.chain[p.level+1]
	topStorage, topFormat := qemucmd.BlockNodeNames(top.index)
	_, baseFormat := qemucmd.BlockNodeNames(base.index)
	_, rootFormat := qemucmd.BlockNodeNames(p.chain[0].index)
	id := "commit-" + diskTarget(disk) + "-" + topFormat
	args := map[string]any{"job-id": id, "device": rootFormat, "top-node": topFormat, "base-node": baseFormat, "auto-dismiss": false}
	if err := mon.Run(ctx, "block-commit", args, nil); err != nil {
		return compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "block commit failed while deleting disk '%s' snapshot: '%v'", diskTarget(disk), err)
	}
	if p.level == 0 {
		// An active commit mirrors the guest's writes until it pivots.
		if err := waitJob(ctx, dom, id, "ready"); err != nil {
			return compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "block commit failed while deleting disk '%s' snapshot: '%v'", diskTarget(disk), err)
		}
		if err := mon.Run(ctx, "job-complete", map[string]string{"id": id}, nil); err != nil {
			return compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "finishing block job failed while deleting disk '%s' snapshot: '%v'", diskTarget(disk), err)
		}
	}
	if err := waitJob(ctx, dom, id, "concluded"); err != nil {
		return compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "block commit failed while deleting disk '%s' snapshot: '%v'", diskTarget(disk), err)
	}
	// The merged image is out of QEMU's graph now.
	if err := mon.BlockdevDel(ctx, topFormat); err != nil {
		d.log.Warn("cannot remove a merged image's node", "node", topFormat, "err", err)
	} else if err := mon.BlockdevDel(ctx, topStorage); err != nil {
		d.log.Warn("cannot remove a merged image's node", "node", topStorage, "err", err)
	}
	newLive, err := cloneDef(live)
	if err != nil {
		return err
	}
	dropImage(&newLive.Devices.Disks[p.disk], p.level)
	if err := d.saveLive(dom, live, newLive); err != nil {
		d.log.Warn("cannot save the status after a snapshot deletion", "domain", dom.name, "err", err)
	}
	if config != nil {
		newConfig, err := cloneDef(config)
		if err != nil {
			return err
		}
		for k := range disksOf(newConfig) {
			pd := &newConfig.Devices.Disks[k]
			if pd.Target != nil && pd.Target.Dev == diskTarget(disk) && unstackPersistent(pd, top.path, base) {
				if err := d.saveConfig(dom, config, newConfig); err != nil {
					return err
				}
			}
		}
	}
	if err := os.Remove(top.path); err != nil {
		d.log.Warn("cannot remove a merged snapshot image", "path", top.path, "err", err)
	}
	return nil
}

// unstackPersistent takes the image at path out of a persistent disk:
// as its top image, base takes its place (with what the definition
// records below base); as a recorded backing image, it leaves the
// recorded chain. It reports whether the disk changed.
func unstackPersistent(disk *libvirtxml.DomainDisk, path string, base chainImage) bool {
	if diskPath(disk) == path {
		below := disk.BackingStore
		setDiskImage(disk, base.path)
		disk.Driver.Type = base.format
		if !domainxml.EmptyBackingStore(below) && below.Source != nil && below.Source.File != nil && below.Source.File.File == base.path {
			disk.BackingStore = below.BackingStore
		}
		return true
	}
	for above := &disk.BackingStore; !domainxml.EmptyBackingStore(*above); above = &(*above).BackingStore {
		if bs := *above; bs.Source != nil && bs.Source.File != nil && bs.Source.File.File == path {
			*above = bs.BackingStore
			return true
		}
	}
	return false
}

// dropImage takes the image at level out of a live disk's chain.
func dropImage(disk *libvirtxml.DomainDisk, level int) {
	if level == 0 {
		bs := disk.BackingStore
		disk.Source = &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: bs.Source.File.File}, Index: bs.Index}
		if disk.Driver == nil {
			disk.Driver = &libvirtxml.DomainDiskDriver{Name: "qemu"}
		}
		disk.Driver.Type = bs.Format.Type
		disk.BackingStore = bs.BackingStore
		return
	}
	above := &disk.BackingStore
	for k := 1; k < level; k++ {
		above = &(*above).BackingStore
	}
	*above = (*above).BackingStore
}

// waitJob polls query-jobs until the job reaches status (or concludes
// with an error); a concluded job is dismissed.
func waitJob(ctx context.Context, dom *domain, id, status string) error {
	mon, err := dom.monitor()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Minute)
	for {
		var jobs []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
			Error  string `json:"error"`
		}
		if err := mon.Run(ctx, "query-jobs", nil, &jobs); err != nil {
			return fmt.Errorf("query-jobs: %w", err)
		}
		found := false
		for _, j := range jobs {
			if j.ID != id {
				continue
			}
			found = true
			if j.Status == "concluded" {
				mon.JobDismiss(ctx, id)
				if j.Error != "" {
					return fmt.Errorf("%s", j.Error)
				}
				if status == "concluded" {
					return nil
				}
				return fmt.Errorf("job %s ended before it was %s", id, status)
			}
			if j.Status == status {
				return nil
			}
		}
		if !found {
			return fmt.Errorf("job %s vanished", id)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("job %s did not get %s", id, status)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
