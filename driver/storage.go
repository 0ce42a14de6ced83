package driver

import (
	"context"
	"io"

	libvirt "github.com/digitalocean/go-libvirt"
)

// Storage is the storage driver (pools and volumes), as libvirt's
// src/storage: implemented by driver/storage. Pools are named by
// go-libvirt's StoragePool and found by UUID, volumes by their pool's name
// and their own name, as libvirt's remote driver does with what comes off
// the wire.
type Storage interface {
	ListAllStoragePools(ctx context.Context, flags libvirt.ConnectListAllStoragePoolsFlags) ([]libvirt.StoragePool, error)
	// StoragePoolNames lists the names of the active (or inactive) pools,
	// for the old list and count procedures.
	StoragePoolNames(active bool) []string
	StoragePoolLookupByName(ctx context.Context, name string) (libvirt.StoragePool, error)
	StoragePoolLookupByUUID(ctx context.Context, uuid libvirt.UUID) (libvirt.StoragePool, error)
	// StoragePoolLookupByVolume finds the pool a volume belongs to.
	StoragePoolLookupByVolume(ctx context.Context, v libvirt.StorageVol) (libvirt.StoragePool, error)
	// StoragePoolLookupByTargetPath finds the pool whose target is path.
	StoragePoolLookupByTargetPath(ctx context.Context, path string) (libvirt.StoragePool, error)

	StoragePoolDefineXML(ctx context.Context, xml string, flags uint32) (libvirt.StoragePool, error)
	// StoragePoolCreateXML defines and starts a transient pool.
	StoragePoolCreateXML(ctx context.Context, xml string, flags libvirt.StoragePoolCreateFlags) (libvirt.StoragePool, error)
	StoragePoolCreate(ctx context.Context, p libvirt.StoragePool, flags libvirt.StoragePoolCreateFlags) error
	StoragePoolBuild(ctx context.Context, p libvirt.StoragePool, flags libvirt.StoragePoolBuildFlags) error
	StoragePoolDestroy(ctx context.Context, p libvirt.StoragePool) error
	StoragePoolDelete(ctx context.Context, p libvirt.StoragePool, flags libvirt.StoragePoolDeleteFlags) error
	StoragePoolUndefine(ctx context.Context, p libvirt.StoragePool) error
	StoragePoolRefresh(ctx context.Context, p libvirt.StoragePool, flags uint32) error

	StoragePoolGetXMLDesc(ctx context.Context, p libvirt.StoragePool, flags libvirt.StorageXMLFlags) (string, error)
	StoragePoolGetInfo(ctx context.Context, p libvirt.StoragePool) (StoragePoolInfo, error)
	StoragePoolGetAutostart(ctx context.Context, p libvirt.StoragePool) (bool, error)
	StoragePoolSetAutostart(ctx context.Context, p libvirt.StoragePool, on bool) error
	StoragePoolIsActive(ctx context.Context, p libvirt.StoragePool) (bool, error)
	StoragePoolIsPersistent(ctx context.Context, p libvirt.StoragePool) (bool, error)

	// StoragePoolListVolumes lists an active pool's volumes, by name.
	StoragePoolListVolumes(ctx context.Context, p libvirt.StoragePool) ([]libvirt.StorageVol, error)
	StorageVolLookupByName(ctx context.Context, p libvirt.StoragePool, name string) (libvirt.StorageVol, error)
	// StorageVolLookupByKey and ...ByPath search every active pool; a dir
	// pool's volume key is its path.
	StorageVolLookupByKey(ctx context.Context, key string) (libvirt.StorageVol, error)
	StorageVolLookupByPath(ctx context.Context, path string) (libvirt.StorageVol, error)

	StorageVolCreateXML(ctx context.Context, p libvirt.StoragePool, xml string, flags libvirt.StorageVolCreateFlags) (libvirt.StorageVol, error)
	// StorageVolCreateXMLFrom creates a volume whose content is clone's.
	StorageVolCreateXMLFrom(ctx context.Context, p libvirt.StoragePool, xml string, clone libvirt.StorageVol, flags libvirt.StorageVolCreateFlags) (libvirt.StorageVol, error)
	StorageVolDelete(ctx context.Context, v libvirt.StorageVol, flags libvirt.StorageVolDeleteFlags) error
	// StorageVolWipe overwrites the volume's data; algorithm is
	// virStorageVolWipeAlgorithm (StorageVolWipe passes ZERO).
	StorageVolWipe(ctx context.Context, v libvirt.StorageVol, algorithm libvirt.StorageVolWipeAlgorithm, flags uint32) error
	StorageVolResize(ctx context.Context, v libvirt.StorageVol, capacity uint64, flags libvirt.StorageVolResizeFlags) error
	StorageVolGetXMLDesc(ctx context.Context, v libvirt.StorageVol, flags uint32) (string, error)
	StorageVolGetInfo(ctx context.Context, v libvirt.StorageVol, flags libvirt.StorageVolInfoFlags) (StorageVolInfo, error)
	StorageVolGetPath(ctx context.Context, v libvirt.StorageVol) (string, error)

	// StorageVolDownload opens the volume's bytes [offset, offset+length)
	// for reading (length 0: to the end). With
	// StorageVolDownloadSparseStream, the reader reports holes.
	StorageVolDownload(ctx context.Context, v libvirt.StorageVol, offset, length uint64, flags libvirt.StorageVolDownloadFlags) (VolumeReader, error)
	// StorageVolUpload opens the volume for writing at offset, at most
	// length bytes (0: no limit). The volume is changed only as the
	// writer writes; Close reports whether everything reached the disk.
	StorageVolUpload(ctx context.Context, v libvirt.StorageVol, offset, length uint64, flags libvirt.StorageVolUploadFlags) (VolumeWriter, error)

	// ResolveVolume is what a domain disk of type='volume' uses: the path
	// of volume vol in pool, whether it is a "file" or "block" device for
	// QEMU, and its format (raw, qcow2) as the pool knows it. The pool must
	// be active.
	ResolveVolume(ctx context.Context, pool, vol string) (VolumeSource, error)

	// SetStoragePoolEventSink tells the driver where to deliver pool
	// events. The sink must not block.
	SetStoragePoolEventSink(func(StoragePoolEvent))
}

// StoragePoolInfo is virStoragePoolInfo.
type StoragePoolInfo struct {
	State                           libvirt.StoragePoolState
	Capacity, Allocation, Available uint64
}

// StorageVolInfo is virStorageVolInfo.
type StorageVolInfo struct {
	Type                 libvirt.StorageVolType
	Capacity, Allocation uint64
}

// VolumeSource is where a volume's data is, for a domain disk.
type VolumeSource struct {
	Path   string
	Type   string // "file" or "block"
	Format string // "raw", "qcow2", ...
}

// VolumeReader reads a volume for a download stream.
type VolumeReader interface {
	// ReadSegment reads the next part of the volume: either data into buf
	// (n > 0), or, for a sparse download, a hole of hole bytes that the
	// reader skipped (hole > 0). It returns io.EOF at the end.
	ReadSegment(buf []byte) (n int, hole int64, err error)
	io.Closer
}

// VolumeWriter writes a volume for an upload stream.
type VolumeWriter interface {
	io.Writer
	// Hole skips n bytes, leaving them unallocated (zero) in the volume.
	Hole(n int64) error
	// Close completes the upload (flushing data to disk) and reports
	// whether it succeeded.
	Close() error
	// Abort ends the upload early, keeping what was written.
	Abort()
}

// StoragePoolEvent is a storage pool event for the clients that registered
// for it.
type StoragePoolEvent struct {
	ID   libvirt.StoragePoolEventID
	Pool libvirt.StoragePool
	// Event and Detail, for ID == StoragePoolEventIDLifecycle
	// (virStoragePoolEventLifecycleType).
	Event, Detail int32
}
