package driver

import (
	"context"

	libvirt "github.com/digitalocean/go-libvirt"
)

// DomainSnapshots are libvirt's domain snapshots: the state of a domain's
// disks (and memory) kept under a name, in a tree of parents and
// children, with one current snapshot per domain. A driver that has them
// implements this besides Driver; the server finds it by type assertion.
//
// Snapshots are named by domain and name, as on the wire; the lists take
// virDomainSnapshotListFlags.
type DomainSnapshots interface {
	// SnapshotCreateXML takes (or with VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE
	// records) a snapshot and returns its name.
	SnapshotCreateXML(ctx context.Context, dom libvirt.Domain, xml string, flags uint32) (string, error)
	SnapshotGetXMLDesc(ctx context.Context, snap libvirt.DomainSnapshot, flags uint32) (string, error)
	// SnapshotListNames lists the domain's snapshots.
	SnapshotListNames(ctx context.Context, dom libvirt.Domain, flags uint32) ([]string, error)
	// SnapshotListChildrenNames lists a snapshot's children (its
	// descendants with VIR_DOMAIN_SNAPSHOT_LIST_DESCENDANTS).
	SnapshotListChildrenNames(ctx context.Context, snap libvirt.DomainSnapshot, flags uint32) ([]string, error)
	// SnapshotLookupByName fails with libvirt's error if there is no
	// such snapshot.
	SnapshotLookupByName(ctx context.Context, dom libvirt.Domain, name string, flags uint32) error
	HasCurrentSnapshot(ctx context.Context, dom libvirt.Domain, flags uint32) (bool, error)
	// SnapshotCurrent names the current snapshot (an error if none).
	SnapshotCurrent(ctx context.Context, dom libvirt.Domain, flags uint32) (string, error)
	// SnapshotGetParent names the snapshot's parent (an error if none).
	SnapshotGetParent(ctx context.Context, snap libvirt.DomainSnapshot, flags uint32) (string, error)
	SnapshotIsCurrent(ctx context.Context, snap libvirt.DomainSnapshot, flags uint32) (bool, error)
	SnapshotHasMetadata(ctx context.Context, snap libvirt.DomainSnapshot, flags uint32) (bool, error)
	RevertToSnapshot(ctx context.Context, snap libvirt.DomainSnapshot, flags uint32) error
	SnapshotDelete(ctx context.Context, snap libvirt.DomainSnapshot, flags uint32) error
}
