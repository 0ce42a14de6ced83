package server

import (
	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver"
)

// maxSnapshotList is REMOTE_DOMAIN_SNAPSHOT_LIST_MAX.
const maxSnapshotList = 16384

// registerSnapshotHandlers binds the domain snapshot procedures to a
// driver that has snapshots (driver.DomainSnapshots). For one that does
// not, a domain simply has none.
func registerSnapshotHandlers(t *Table, s *Server) {
	sn, ok := s.drv.(driver.DomainSnapshots)
	if !ok {
		registerNoSnapshots(t, s)
		return
	}
	snapOf := func(dom libvirt.Domain, name string) libvirt.DomainSnapshot {
		return libvirt.DomainSnapshot{Name: name, Dom: dom}
	}
	snapsOf := func(dom libvirt.Domain, names []string) []libvirt.DomainSnapshot {
		out := make([]libvirt.DomainSnapshot, len(names))
		for i, n := range names {
			out[i] = snapOf(dom, n)
		}
		return out
	}
	checkMax := func(n int32) error {
		if n > maxSnapshotList {
			return compat.Errorf(libvirt.ErrRPC, compat.FromRPC, "maxnames > REMOTE_DOMAIN_SNAPSHOT_LIST_MAX")
		}
		if n < 0 {
			return compat.Errorf(libvirt.ErrInvalidArg, compat.FromNone, "maxnames in virDomainSnapshotListNames must be zero or greater")
		}
		return nil
	}
	first := func(names []string, n int32) []string {
		if len(names) > int(n) {
			return names[:n]
		}
		return names
	}
	tooMany := func(n int) error {
		if n > maxSnapshotList {
			return compat.Errorf(libvirt.ErrRPC, compat.FromRPC, "Too many domain snapshots '%d' for limit '%d'", n, maxSnapshotList)
		}
		return nil
	}
	t.DomainSnapshotCreateXML(func(c *Call, a *libvirt.DomainSnapshotCreateXMLArgs) (*libvirt.DomainSnapshotCreateXMLRet, error) {
		name, err := sn.SnapshotCreateXML(c.Ctx, a.Dom, a.XMLDesc, a.Flags)
		if err != nil {
			return nil, err
		}
		return &libvirt.DomainSnapshotCreateXMLRet{Snap: snapOf(a.Dom, name)}, nil
	})
	t.DomainSnapshotGetXMLDesc(func(c *Call, a *libvirt.DomainSnapshotGetXMLDescArgs) (*libvirt.DomainSnapshotGetXMLDescRet, error) {
		if c.Conn.ReadOnly() && a.Flags&uint32(libvirt.DomainSnapshotXMLSecure) != 0 {
			return nil, compat.Errorf(libvirt.ErrOperationDenied, compat.FromNone, "virDomainSnapshotGetXMLDesc with secure flag")
		}
		x, err := sn.SnapshotGetXMLDesc(c.Ctx, a.Snap, a.Flags)
		return &libvirt.DomainSnapshotGetXMLDescRet{XML: x}, err
	})
	t.DomainSnapshotNum(func(c *Call, a *libvirt.DomainSnapshotNumArgs) (*libvirt.DomainSnapshotNumRet, error) {
		names, err := sn.SnapshotListNames(c.Ctx, a.Dom, a.Flags)
		return &libvirt.DomainSnapshotNumRet{Num: int32(len(names))}, err
	})
	t.DomainSnapshotListNames(func(c *Call, a *libvirt.DomainSnapshotListNamesArgs) (*libvirt.DomainSnapshotListNamesRet, error) {
		if err := checkMax(a.Maxnames); err != nil {
			return nil, err
		}
		names, err := sn.SnapshotListNames(c.Ctx, a.Dom, a.Flags)
		return &libvirt.DomainSnapshotListNamesRet{Names: first(names, a.Maxnames)}, err
	})
	t.DomainListAllSnapshots(func(c *Call, a *libvirt.DomainListAllSnapshotsArgs) (*libvirt.DomainListAllSnapshotsRet, error) {
		names, err := sn.SnapshotListNames(c.Ctx, a.Dom, a.Flags)
		if err != nil {
			return nil, err
		}
		if err := tooMany(len(names)); err != nil {
			return nil, err
		}
		ret := &libvirt.DomainListAllSnapshotsRet{Ret: int32(len(names))}
		if a.NeedResults != 0 {
			ret.Snapshots = snapsOf(a.Dom, names)
		}
		return ret, nil
	})
	t.DomainSnapshotNumChildren(func(c *Call, a *libvirt.DomainSnapshotNumChildrenArgs) (*libvirt.DomainSnapshotNumChildrenRet, error) {
		names, err := sn.SnapshotListChildrenNames(c.Ctx, a.Snap, a.Flags)
		return &libvirt.DomainSnapshotNumChildrenRet{Num: int32(len(names))}, err
	})
	t.DomainSnapshotListChildrenNames(func(c *Call, a *libvirt.DomainSnapshotListChildrenNamesArgs) (*libvirt.DomainSnapshotListChildrenNamesRet, error) {
		if err := checkMax(a.Maxnames); err != nil {
			return nil, err
		}
		names, err := sn.SnapshotListChildrenNames(c.Ctx, a.Snap, a.Flags)
		return &libvirt.DomainSnapshotListChildrenNamesRet{Names: first(names, a.Maxnames)}, err
	})
	t.DomainSnapshotListAllChildren(func(c *Call, a *libvirt.DomainSnapshotListAllChildrenArgs) (*libvirt.DomainSnapshotListAllChildrenRet, error) {
		names, err := sn.SnapshotListChildrenNames(c.Ctx, a.Snapshot, a.Flags)
		if err != nil {
			return nil, err
		}
		if err := tooMany(len(names)); err != nil {
			return nil, err
		}
		ret := &libvirt.DomainSnapshotListAllChildrenRet{Ret: int32(len(names))}
		if a.NeedResults != 0 {
			ret.Snapshots = snapsOf(a.Snapshot.Dom, names)
		}
		return ret, nil
	})
	t.DomainSnapshotLookupByName(func(c *Call, a *libvirt.DomainSnapshotLookupByNameArgs) (*libvirt.DomainSnapshotLookupByNameRet, error) {
		if err := sn.SnapshotLookupByName(c.Ctx, a.Dom, a.Name, a.Flags); err != nil {
			return nil, err
		}
		return &libvirt.DomainSnapshotLookupByNameRet{Snap: snapOf(a.Dom, a.Name)}, nil
	})
	t.DomainHasCurrentSnapshot(func(c *Call, a *libvirt.DomainHasCurrentSnapshotArgs) (*libvirt.DomainHasCurrentSnapshotRet, error) {
		has, err := sn.HasCurrentSnapshot(c.Ctx, a.Dom, a.Flags)
		return &libvirt.DomainHasCurrentSnapshotRet{Result: boolInt(has)}, err
	})
	t.DomainSnapshotGetParent(func(c *Call, a *libvirt.DomainSnapshotGetParentArgs) (*libvirt.DomainSnapshotGetParentRet, error) {
		parent, err := sn.SnapshotGetParent(c.Ctx, a.Snap, a.Flags)
		if err != nil {
			return nil, err
		}
		return &libvirt.DomainSnapshotGetParentRet{Snap: snapOf(a.Snap.Dom, parent)}, nil
	})
	t.DomainSnapshotCurrent(func(c *Call, a *libvirt.DomainSnapshotCurrentArgs) (*libvirt.DomainSnapshotCurrentRet, error) {
		name, err := sn.SnapshotCurrent(c.Ctx, a.Dom, a.Flags)
		if err != nil {
			return nil, err
		}
		return &libvirt.DomainSnapshotCurrentRet{Snap: snapOf(a.Dom, name)}, nil
	})
	t.DomainSnapshotIsCurrent(func(c *Call, a *libvirt.DomainSnapshotIsCurrentArgs) (*libvirt.DomainSnapshotIsCurrentRet, error) {
		cur, err := sn.SnapshotIsCurrent(c.Ctx, a.Snap, a.Flags)
		return &libvirt.DomainSnapshotIsCurrentRet{Current: boolInt(cur)}, err
	})
	t.DomainSnapshotHasMetadata(func(c *Call, a *libvirt.DomainSnapshotHasMetadataArgs) (*libvirt.DomainSnapshotHasMetadataRet, error) {
		has, err := sn.SnapshotHasMetadata(c.Ctx, a.Snap, a.Flags)
		return &libvirt.DomainSnapshotHasMetadataRet{Metadata: boolInt(has)}, err
	})
	t.DomainRevertToSnapshot(func(c *Call, a *libvirt.DomainRevertToSnapshotArgs) error {
		return sn.RevertToSnapshot(c.Ctx, a.Snap, a.Flags)
	})
	t.DomainSnapshotDelete(func(c *Call, a *libvirt.DomainSnapshotDeleteArgs) error {
		return sn.SnapshotDelete(c.Ctx, a.Snap, uint32(a.Flags))
	})
}

// registerNoSnapshots answers the list calls for a driver without
// snapshots: an existing domain has none.
func registerNoSnapshots(t *Table, s *Server) {
	drv := s.drv
	exists := func(c *Call, d libvirt.Domain) error {
		_, err := drv.IsActive(c.Ctx, d)
		return err
	}
	t.DomainSnapshotNum(func(c *Call, a *libvirt.DomainSnapshotNumArgs) (*libvirt.DomainSnapshotNumRet, error) {
		return &libvirt.DomainSnapshotNumRet{}, exists(c, a.Dom)
	})
	t.DomainSnapshotListNames(func(c *Call, a *libvirt.DomainSnapshotListNamesArgs) (*libvirt.DomainSnapshotListNamesRet, error) {
		return &libvirt.DomainSnapshotListNamesRet{}, exists(c, a.Dom)
	})
	t.DomainListAllSnapshots(func(c *Call, a *libvirt.DomainListAllSnapshotsArgs) (*libvirt.DomainListAllSnapshotsRet, error) {
		return &libvirt.DomainListAllSnapshotsRet{}, exists(c, a.Dom)
	})
}
