package qemu

import (
	"context"
	"strings"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver"
	"github.com/govirtd/govirtd/driver/qemu/domainxml"
	"github.com/govirtd/govirtd/driver/qemu/snapshot"
)

// Domain snapshots (driver.DomainSnapshots), as libvirt 9.0's QEMU
// driver takes them: internal ones (every disk qcow2) with qemu-img
// snapshot on a shut off domain and HMP savevm/loadvm/delvm on a running
// one, external disk-only ones as new qcow2 overlays. The metadata lives
// in d.snaps (driver/qemu/snapshot), keyed by domain name.

var _ driver.DomainSnapshots = (*Driver)(nil)

const (
	snapCreateRedefine   = uint32(libvirt.DomainSnapshotCreateRedefine)
	snapCreateCurrent    = uint32(libvirt.DomainSnapshotCreateCurrent)
	snapCreateNoMetadata = uint32(libvirt.DomainSnapshotCreateNoMetadata)
	snapCreateHalt       = uint32(libvirt.DomainSnapshotCreateHalt)
	snapCreateDiskOnly   = uint32(libvirt.DomainSnapshotCreateDiskOnly)
	snapCreateReuseExt   = uint32(libvirt.DomainSnapshotCreateReuseExt)
	snapCreateQuiesce    = uint32(libvirt.DomainSnapshotCreateQuiesce)
	snapCreateAtomic     = uint32(libvirt.DomainSnapshotCreateAtomic)
	snapCreateLive       = uint32(libvirt.DomainSnapshotCreateLive)
	snapCreateValidate   = uint32(libvirt.DomainSnapshotCreateValidate)

	snapRevertRunning    = uint32(libvirt.DomainSnapshotRevertRunning)
	snapRevertPaused     = uint32(libvirt.DomainSnapshotRevertPaused)
	snapRevertForce      = uint32(libvirt.DomainSnapshotRevertForce)
	snapRevertResetNvram = uint32(libvirt.DomainSnapshotRevertResetNvram)

	snapDeleteChildren     = uint32(libvirt.DomainSnapshotDeleteChildren)
	snapDeleteMetadataOnly = uint32(libvirt.DomainSnapshotDeleteMetadataOnly)
	snapDeleteChildrenOnly = uint32(libvirt.DomainSnapshotDeleteChildrenOnly)
)

// snapDomain finds the domain a snapshot call names, and its name (the
// key of its snapshots).
func (d *Driver) snapDomain(ref libvirt.Domain) (*domain, string, error) {
	dom, err := d.get(ref)
	if err != nil {
		return nil, "", err
	}
	dom.mu.Lock()
	defer dom.mu.Unlock()
	return dom, dom.name, nil
}

// snapOf finds one snapshot of a domain.
func (d *Driver) snapOf(ref libvirt.DomainSnapshot) (*domain, string, *libvirtxml.DomainSnapshot, error) {
	dom, name, err := d.snapDomain(ref.Dom)
	if err != nil {
		return nil, "", nil, err
	}
	def, err := d.snaps.Get(name, ref.Name)
	if err != nil {
		return nil, "", nil, err
	}
	return dom, name, def, nil
}

// SnapshotGetXMLDesc implements driver.DomainSnapshots.
func (d *Driver) SnapshotGetXMLDesc(ctx context.Context, ref libvirt.DomainSnapshot, flags uint32) (string, error) {
	if flags&^uint32(libvirt.DomainSnapshotXMLSecure) != 0 {
		return "", errUnsupportedFlagsIn(flags, "qemuDomainSnapshotGetXMLDesc")
	}
	_, _, def, err := d.snapOf(ref)
	if err != nil {
		return "", err
	}
	domXML := ""
	if def.Domain != nil {
		if domXML, err = domainxml.Format(def.Domain, domainxml.FormatOptions{Inactive: true, Secure: flags != 0}); err != nil {
			return "", err
		}
		if r := def.Domain.Resource; r != nil && r.Partition != "" {
			domXML = withPartition(domXML, r.Partition)
		}
	}
	return snapshot.Format(def, domXML)
}

// withPartition puts <resource> back into a domain's inactive XML (which
// leaves it out) where libvirt prints it: before <sysinfo>, <bootloader>
// or <os>.
func withPartition(domXML, partition string) string {
	res := "  <resource>\n    <partition>" + partition + "</partition>\n  </resource>\n"
	for _, next := range []string{"\n  <sysinfo", "\n  <bootloader", "\n  <os>", "\n  <os "} {
		if i := strings.Index(domXML, next); i >= 0 {
			return domXML[:i+1] + res + domXML[i+1:]
		}
	}
	return domXML
}

// SnapshotListNames implements driver.DomainSnapshots.
func (d *Driver) SnapshotListNames(ctx context.Context, ref libvirt.Domain, flags uint32) ([]string, error) {
	if flags&^snapshot.ListFlagsAll != 0 {
		return nil, errUnsupportedFlagsIn(flags, "qemuDomainListAllSnapshots")
	}
	_, name, err := d.snapDomain(ref)
	if err != nil {
		return nil, err
	}
	return d.snaps.Names(name, "", flags)
}

// SnapshotListChildrenNames implements driver.DomainSnapshots.
func (d *Driver) SnapshotListChildrenNames(ctx context.Context, ref libvirt.DomainSnapshot, flags uint32) ([]string, error) {
	if flags&^snapshot.ListFlagsAll != 0 {
		return nil, errUnsupportedFlagsIn(flags, "qemuDomainSnapshotListAllChildren")
	}
	_, name, _, err := d.snapOf(ref)
	if err != nil {
		return nil, err
	}
	return d.snaps.Names(name, ref.Name, flags)
}

// SnapshotLookupByName implements driver.DomainSnapshots.
func (d *Driver) SnapshotLookupByName(ctx context.Context, ref libvirt.Domain, name string, flags uint32) error {
	if flags != 0 {
		return errUnsupportedFlagsIn(flags, "qemuDomainSnapshotLookupByName")
	}
	_, _, _, err := d.snapOf(libvirt.DomainSnapshot{Dom: ref, Name: name})
	return err
}

// HasCurrentSnapshot implements driver.DomainSnapshots.
func (d *Driver) HasCurrentSnapshot(ctx context.Context, ref libvirt.Domain, flags uint32) (bool, error) {
	if flags != 0 {
		return false, errUnsupportedFlagsIn(flags, "qemuDomainHasCurrentSnapshot")
	}
	_, name, err := d.snapDomain(ref)
	if err != nil {
		return false, err
	}
	return d.snaps.Current(name) != "", nil
}

// SnapshotCurrent implements driver.DomainSnapshots.
func (d *Driver) SnapshotCurrent(ctx context.Context, ref libvirt.Domain, flags uint32) (string, error) {
	if flags != 0 {
		return "", errUnsupportedFlagsIn(flags, "qemuDomainSnapshotCurrent")
	}
	_, name, err := d.snapDomain(ref)
	if err != nil {
		return "", err
	}
	cur := d.snaps.Current(name)
	if cur == "" {
		return "", compat.Errorf(libvirt.ErrNoDomainSnapshot, compat.FromQEMU, "the domain does not have a current snapshot")
	}
	return cur, nil
}

// SnapshotGetParent implements driver.DomainSnapshots.
func (d *Driver) SnapshotGetParent(ctx context.Context, ref libvirt.DomainSnapshot, flags uint32) (string, error) {
	if flags != 0 {
		return "", errUnsupportedFlagsIn(flags, "qemuDomainSnapshotGetParent")
	}
	_, name, def, err := d.snapOf(ref)
	if err != nil {
		return "", err
	}
	parent := snapshot.ParentName(def)
	if parent != "" {
		if _, err := d.snaps.Get(name, parent); err != nil {
			parent = ""
		}
	}
	if parent == "" {
		return "", compat.Errorf(libvirt.ErrNoDomainSnapshot, compat.FromQEMU, "snapshot '%s' does not have a parent", ref.Name)
	}
	return parent, nil
}

// SnapshotIsCurrent implements driver.DomainSnapshots.
func (d *Driver) SnapshotIsCurrent(ctx context.Context, ref libvirt.DomainSnapshot, flags uint32) (bool, error) {
	if flags != 0 {
		return false, errUnsupportedFlagsIn(flags, "qemuDomainSnapshotIsCurrent")
	}
	_, name, _, err := d.snapOf(ref)
	if err != nil {
		return false, err
	}
	return d.snaps.Current(name) == ref.Name, nil
}

// SnapshotHasMetadata implements driver.DomainSnapshots: every snapshot
// govirtd knows of has metadata.
func (d *Driver) SnapshotHasMetadata(ctx context.Context, ref libvirt.DomainSnapshot, flags uint32) (bool, error) {
	if flags != 0 {
		return false, errUnsupportedFlagsIn(flags, "qemuDomainSnapshotHasMetadata")
	}
	_, _, _, err := d.snapOf(ref)
	return err == nil, err
}

// SnapshotDelete implements driver.DomainSnapshots (qemuSnapshotDelete).
func (d *Driver) SnapshotDelete(ctx context.Context, ref libvirt.DomainSnapshot, flags uint32) error {
	if flags&^(snapDeleteChildren|snapDeleteMetadataOnly|snapDeleteChildrenOnly) != 0 {
		return errUnsupportedFlagsIn(flags, "qemuDomainSnapshotDelete")
	}
	dom, _, err := d.snapDomain(ref.Dom)
	if err != nil {
		return err
	}
	return withJob(ctx, dom, "remoteDispatchDomainSnapshotDelete", func() error {
		name := dom.name
		if _, err := d.snaps.Get(name, ref.Name); err != nil {
			return err
		}
		metadataOnly := flags&snapDeleteMetadataOnly != 0
		withChildren := flags&(snapDeleteChildren|snapDeleteChildrenOnly) != 0
		var doomed []string // leaves first
		if withChildren {
			desc := d.snaps.Descendants(name, ref.Name)
			for i := len(desc) - 1; i >= 0; i-- {
				doomed = append(doomed, desc[i])
			}
		}
		if flags&snapDeleteChildrenOnly == 0 {
			doomed = append(doomed, ref.Name)
		}
		if !metadataOnly {
			if err := d.checkDelete(dom, name, ref.Name, flags); err != nil {
				return err
			}
		}
		if def, _ := d.snaps.Get(name, ref.Name); !metadataOnly && !withChildren && snapshot.IsExternal(def) {
			if err := d.deleteExternal(ctx, dom, name, def); err != nil {
				return err
			}
			if err := d.rebaseChildren(name, def); err != nil {
				return err
			}
			return d.snaps.Remove(name, ref.Name)
		}
		// With children gone, a current snapshot among them hands
		// "current" to the one they were deleted under.
		cur := d.snaps.Current(name)
		for _, n := range doomed {
			if n == ref.Name {
				break
			}
			if n == cur {
				if err := d.snaps.SetCurrent(name, ref.Name); err != nil {
					return err
				}
			}
		}
		for _, n := range doomed {
			if !metadataOnly {
				if err := d.discardInternal(ctx, dom, n); err != nil {
					return err
				}
			}
			if err := d.snaps.Remove(name, n); err != nil {
				return err
			}
		}
		return nil
	})
}

// rebaseChildren: after an external snapshot's overlays are merged away,
// its children's definitions name the images the data went to, so that
// they can be deleted in turn.
func (d *Driver) rebaseChildren(domName string, def *libvirtxml.DomainSnapshot) error {
	gone := map[string]libvirtxml.DomainDisk{} // overlay path -> the disk as the snapshot kept it
	for _, sd := range snapDisks(def) {
		if sd.Snapshot != snapshot.LocationExternal || sd.Source == nil || sd.Source.File == nil {
			continue
		}
		for _, disk := range disksOf(def.Domain) {
			if disk.Target != nil && disk.Target.Dev == sd.Name {
				gone[sd.Source.File.File] = disk
			}
		}
	}
	children, err := d.snaps.Names(domName, def.Name, 0)
	if err != nil {
		return err
	}
	for _, c := range children {
		cd, err := d.snaps.Get(domName, c)
		if err != nil || cd.Domain == nil {
			continue
		}
		nd := *cd
		dom, err := cloneDef(cd.Domain)
		if err != nil {
			return err
		}
		for i := range disksOf(dom) {
			if was, ok := gone[diskPath(&dom.Devices.Disks[i])]; ok {
				dom.Devices.Disks[i].Source = was.Source
				dom.Devices.Disks[i].Driver = was.Driver
			}
		}
		nd.Domain = dom
		if err := d.snaps.Put(domName, &nd, false); err != nil {
			return err
		}
	}
	return nil
}

// checkDelete is qemuSnapshotDeleteValidate: which deletions libvirt 9.0
// refuses.
func (d *Driver) checkDelete(dom *domain, domName, name string, flags uint32) error {
	def, err := d.snaps.Get(domName, name)
	if err != nil {
		return err
	}
	external := snapshot.IsExternal(def)
	dom.mu.Lock()
	live := dom.live
	dom.mu.Unlock()
	// An internal snapshot lives in the images it was taken in: delvm
	// would miss it if the disk is on another image now.
	if !external && live != nil && def.Domain != nil {
		for _, sd := range snapDisks(def) {
			if sd.Snapshot != snapshot.LocationInternal {
				continue
			}
			was, now := "", ""
			for _, disk := range disksOf(def.Domain) {
				if disk.Target != nil && disk.Target.Dev == sd.Name {
					was = diskPath(&disk)
				}
			}
			for _, disk := range disksOf(live) {
				if disk.Target != nil && disk.Target.Dev == sd.Name {
					now = diskPath(&disk)
				}
			}
			if was != now {
				return compat.Errorf(libvirt.ErrOperationUnsupported, compat.FromQEMU, "disk image '%s' for internal snapshot '%s' is not the same as disk image currently used by VM", sd.Name, name)
			}
		}
	}
	if flags&(snapDeleteChildren|snapDeleteChildrenOnly) != 0 {
		externalChildren := 0
		for _, c := range d.snaps.Descendants(domName, name) {
			if cd, err := d.snaps.Get(domName, c); err == nil && snapshot.IsExternal(cd) {
				externalChildren++
			}
		}
		switch {
		case externalChildren > 0 && flags&snapDeleteChildrenOnly != 0:
			return compat.Errorf(libvirt.ErrConfigUnsupported, compat.FromQEMU, "deletion of external children disk snapshots not supported")
		case externalChildren > 0 && !external:
			return compat.Errorf(libvirt.ErrConfigUnsupported, compat.FromQEMU, "deletion of external and internal children disk snapshots not supported")
		case external && flags&snapDeleteChildrenOnly == 0:
			return compat.Errorf(libvirt.ErrConfigUnsupported, compat.FromQEMU, "deletion of external disk snapshots with children not supported")
		}
	}
	return nil
}

// snapshotState is the snapshot state of a domain state
// (virDomainSnapshotState shares virDomainState's values).
func snapshotState(s libvirt.DomainState) string {
	switch s {
	case libvirt.DomainRunning:
		return snapshot.StateRunning
	case libvirt.DomainBlocked:
		return "blocked"
	case libvirt.DomainPaused:
		return snapshot.StatePaused
	case libvirt.DomainShutdown:
		return "shutdown"
	case libvirt.DomainShutoff:
		return snapshot.StateShutoff
	case libvirt.DomainCrashed:
		return "crashed"
	case libvirt.DomainPmsuspended:
		return "pmsuspended"
	}
	return "nostate"
}
