// Package driver declares what the RPC server needs from a hypervisor
// driver. The server knows connections and procedures; a driver knows
// domains and the host. driver/qemu implements it with real QEMU processes.
//
// Domains are named by go-libvirt's Domain (name, UUID, id), as on the wire;
// drivers find them by UUID, as libvirt's do. Failures a client should see
// in libvirt's terms are *compat.Error values (possibly wrapped); any other
// error reaches the client as an internal error.
package driver

import (
	"context"
	"io"

	libvirt "github.com/digitalocean/go-libvirt"
)

// NodeInfo is libvirt's virNodeInfo.
type NodeInfo struct {
	Model   string // CPU architecture, e.g. "x86_64"
	Memory  uint64 // KiB
	CPUs    int32
	MHz     int32
	Nodes   int32
	Sockets int32 // per node
	Cores   int32 // per socket
	Threads int32 // per core
}

// Driver is a hypervisor driver as the server sees it.
type Driver interface {
	Host
	NodeQueries
	Domains
	DomainEdits
	Migration
	DomainStats
	DomainSaves
	// ConnectionClosed tells the driver a client connection went away, so
	// it can clean up work that connection owned (a managed migration the
	// client never finished).
	ConnectionClosed(connID uint64)
	// SetEventSink tells the driver where to deliver domain events. The
	// sink must not block: it is called from the driver's goroutines.
	SetEventSink(func(Event))
}

// Host answers the connection- and host-level queries.
type Host interface {
	// Type is the hypervisor name CONNECT_GET_TYPE reports ("QEMU").
	Type() string
	// URI is the canonical URI of a connection to this driver ("qemu:///system").
	URI() string
	// AcceptsURI reports whether CONNECT_OPEN with this name is for this
	// driver; an error explains a refusal in libvirt's words.
	AcceptsURI(name string) error
	// Version is the hypervisor version, major*1000000 + minor*1000 + micro.
	Version() uint64
	Hostname() string
	Capabilities() string
	// DomainCapabilities describes what a domain may use with the given
	// emulator, arch, machine and virt type ("" picks the default).
	DomainCapabilities(emulator, arch, machine, virttype string) (string, error)
	NodeInfo() NodeInfo
}

// DomainInfo is libvirt's virDomainInfo.
type DomainInfo struct {
	State     libvirt.DomainState
	MaxMem    uint64 // KiB
	Memory    uint64 // KiB
	NrVirtCPU uint16
	CPUTime   uint64 // ns
}

// Domains manages domains.
//
// The lookups, lists and status queries (ListAllDomains, Lookup*, GetXMLDesc,
// GetInfo, GetState, Is*, GetAutostart) must answer from memory without
// waiting for a job, QEMU, disk or network: the server runs them on the
// connection's reader (server/inline.go), where waiting would stall the
// connection.
type Domains interface {
	// ListAllDomains returns the domains matching libvirt's
	// virConnectListAllDomainsFlags.
	ListAllDomains(ctx context.Context, flags libvirt.ConnectListAllDomainsFlags) ([]libvirt.Domain, error)
	LookupByName(ctx context.Context, name string) (libvirt.Domain, error)
	LookupByUUID(ctx context.Context, uuid libvirt.UUID) (libvirt.Domain, error)
	LookupByID(ctx context.Context, id int32) (libvirt.Domain, error)

	DefineXML(ctx context.Context, xml string, flags uint32) (libvirt.Domain, error)
	Undefine(ctx context.Context, dom libvirt.Domain, flags uint32) error
	// Create starts a defined domain and returns it with its new id.
	Create(ctx context.Context, dom libvirt.Domain, flags uint32) (libvirt.Domain, error)
	// CreateXML starts a transient domain.
	CreateXML(ctx context.Context, xml string, flags uint32) (libvirt.Domain, error)
	Destroy(ctx context.Context, dom libvirt.Domain, flags uint32) error
	Shutdown(ctx context.Context, dom libvirt.Domain, flags uint32) error
	Reboot(ctx context.Context, dom libvirt.Domain, flags uint32) error
	Reset(ctx context.Context, dom libvirt.Domain, flags uint32) error
	Suspend(ctx context.Context, dom libvirt.Domain) error
	Resume(ctx context.Context, dom libvirt.Domain) error

	GetInfo(ctx context.Context, dom libvirt.Domain) (DomainInfo, error)
	GetState(ctx context.Context, dom libvirt.Domain) (state, reason int32, err error)
	GetXMLDesc(ctx context.Context, dom libvirt.Domain, flags libvirt.DomainXMLFlags) (string, error)
	GetOSType(ctx context.Context, dom libvirt.Domain) (string, error)
	IsActive(ctx context.Context, dom libvirt.Domain) (bool, error)
	IsPersistent(ctx context.Context, dom libvirt.Domain) (bool, error)
	GetAutostart(ctx context.Context, dom libvirt.Domain) (bool, error)
	SetAutostart(ctx context.Context, dom libvirt.Domain, on bool) error
	// GetAllDomainStats returns libvirt's stats records for the given
	// domains (all matching the list flags in flags when doms is empty).
	GetAllDomainStats(ctx context.Context, doms []libvirt.Domain, stats, flags uint32) ([]libvirt.DomainStatsRecord, error)
	// GetBlockInfo sizes one disk, named by target (vda) or source path.
	GetBlockInfo(ctx context.Context, dom libvirt.Domain, disk string) (capacity, allocation, physical uint64, err error)
}

// DomainSaves are virsh save, restore and managedsave: a running domain's
// memory and device state written to a file (libvirt's save image format)
// and the domain stopped, or started again from such a file.
type DomainSaves interface {
	// Save writes a running domain to path and stops it. xml, when not
	// empty, replaces the definition stored in the image (it must
	// describe the same domain).
	Save(ctx context.Context, dom libvirt.Domain, path, xml string, flags uint32) error
	// Restore starts the domain saved in path.
	Restore(ctx context.Context, path, xml string, flags uint32) error
	SaveImageGetXMLDesc(ctx context.Context, path string, flags uint32) (string, error)
	SaveImageDefineXML(ctx context.Context, path, xml string, flags uint32) error
	// ManagedSave saves a persistent domain to the image the driver keeps
	// for it; the next start restores from it.
	ManagedSave(ctx context.Context, dom libvirt.Domain, flags uint32) error
	HasManagedSaveImage(ctx context.Context, dom libvirt.Domain, flags uint32) (bool, error)
	ManagedSaveRemove(ctx context.Context, dom libvirt.Domain, flags uint32) error
	ManagedSaveGetXMLDesc(ctx context.Context, dom libvirt.Domain, flags uint32) (string, error)
	ManagedSaveDefineXML(ctx context.Context, dom libvirt.Domain, xml string, flags uint32) error
}

// Migration is libvirt's migration protocol v3 (the *_PARAMS procedures;
// the older ones map onto them) and the job calls that go with it.
type Migration interface {
	MigrateBegin3(ctx context.Context, dom libvirt.Domain, params []libvirt.TypedParam, flags uint32) (cookie []byte, xml string, err error)
	MigratePrepare3(ctx context.Context, params []libvirt.TypedParam, cookie []byte, flags uint32) (cookieOut []byte, uri string, err error)
	// MigratePrepareTunnel3 is Prepare for a tunnelled migration: the
	// migration data arrives on stream (the client's RPC connection) after
	// the reply. On success the driver owns the stream and must close it
	// when done (with CloseWithError, if it has it, to report a failure);
	// on error the caller discards it.
	MigratePrepareTunnel3(ctx context.Context, params []libvirt.TypedParam, cookie []byte, flags uint32, stream io.ReadCloser) (cookieOut []byte, err error)
	// MigratePerform3 runs the migration on the source. dconnuri is set in
	// peer-to-peer mode: the driver then drives the destination itself.
	MigratePerform3(ctx context.Context, dom libvirt.Domain, dconnuri string, params []libvirt.TypedParam, cookie []byte, flags uint32) (cookieOut []byte, err error)
	MigrateFinish3(ctx context.Context, params []libvirt.TypedParam, cookie []byte, flags uint32, cancelled bool) (libvirt.Domain, []byte, error)
	MigrateConfirm3(ctx context.Context, dom libvirt.Domain, params []libvirt.TypedParam, cookie []byte, flags uint32, cancelled bool) error

	GetJobInfo(ctx context.Context, dom libvirt.Domain) (JobInfo, error)
	GetJobStats(ctx context.Context, dom libvirt.Domain, flags uint32) (jobType int32, params []libvirt.TypedParam, err error)
	AbortJob(ctx context.Context, dom libvirt.Domain) error
	// AbortJobFlags is AbortJob with virDomainAbortJobFlagsValues:
	// VIR_DOMAIN_ABORT_JOB_POSTCOPY breaks a post-copy migration's
	// connection instead (it cannot be aborted; it can be recovered).
	AbortJobFlags(ctx context.Context, dom libvirt.Domain, flags uint32) error
	// MigrateStartPostCopy switches the domain's outgoing migration, begun
	// with VIR_MIGRATE_POSTCOPY, to post-copy.
	MigrateStartPostCopy(ctx context.Context, dom libvirt.Domain, flags uint32) error
	// MigrateGetCompressionCache and MigrateSetCompressionCache are the
	// xbzrle cache size in bytes (virsh migrate-compcache).
	MigrateGetCompressionCache(ctx context.Context, dom libvirt.Domain, flags uint32) (uint64, error)
	MigrateSetCompressionCache(ctx context.Context, dom libvirt.Domain, bytes uint64, flags uint32) error
	MigrateSetMaxSpeed(ctx context.Context, dom libvirt.Domain, mibps uint64, flags uint32) error
	MigrateGetMaxSpeed(ctx context.Context, dom libvirt.Domain, flags uint32) (uint64, error)
	MigrateSetMaxDowntime(ctx context.Context, dom libvirt.Domain, ms uint64, flags uint32) error
	MigrateGetMaxDowntime(ctx context.Context, dom libvirt.Domain, flags uint32) (uint64, error)
}

// ErrorCloser is a stream whose reader can tell the writer why it stopped
// reading (the server's incoming RPC streams are).
type ErrorCloser interface {
	CloseWithError(err error) error
}

// JobInfo is libvirt's virDomainJobInfo.
type JobInfo struct {
	Type                                    int32
	TimeElapsed, TimeRemaining              uint64
	DataTotal, DataProcessed, DataRemaining uint64
	MemTotal, MemProcessed, MemRemaining    uint64
	FileTotal, FileProcessed, FileRemaining uint64
}

// Event is a domain event for the clients that registered for it.
type Event struct {
	ID  libvirt.DomainEventID
	Dom libvirt.Domain
	// Lifecycle event and detail, for ID == DomainEventIDLifecycle.
	Event, Detail int32
	// Iteration, for ID == DomainEventIDMigrationIteration.
	Iteration int32
	// Params, for ID == DomainEventIDJobCompleted.
	Params []libvirt.TypedParam
	// MetadataType and MetadataURI, for ID == DomainEventIDMetadataChange
	// (the URI only for VIR_DOMAIN_METADATA_ELEMENT).
	MetadataType int32
	MetadataURI  string
	// SrcPath, DevAlias, IOErrorAction and IOErrorReason, for ID ==
	// DomainEventIDIoError and DomainEventIDIoErrorReason: the disk's
	// source, its alias, a virDomainEventIOErrorAction and, for the
	// second, "enospc" or "".
	SrcPath, DevAlias string
	IOErrorAction     int32
	IOErrorReason     string
}

// DiskError is one entry of virDomainGetDiskErrors: a disk's target and
// its virDomainDiskErrorCode. (go-libvirt's DomainDiskError hides the
// code in an unexported field, so the wire form is declared here.)
type DiskError struct {
	Disk  string
	Error int32
}

// DomainDiskErrors reports running domains' disk errors (virsh
// domblkerror). A driver that has them implements it.
type DomainDiskErrors interface {
	// GetDiskErrors returns up to maxErrors disks with an error and their
	// number; with maxErrors 0, no errors and the number of disks.
	GetDiskErrors(ctx context.Context, dom libvirt.Domain, maxErrors, flags uint32) ([]DiskError, int32, error)
}

type connIDKey struct{}

// WithConnID tags a request context with the client connection it came
// from, so the driver can tie work to that connection.
func WithConnID(ctx context.Context, id uint64) context.Context {
	return context.WithValue(ctx, connIDKey{}, id)
}

// ConnID returns the connection a request came from (0 if unknown).
func ConnID(ctx context.Context) uint64 {
	id, _ := ctx.Value(connIDKey{}).(uint64)
	return id
}

// DomainConsoles opens a running domain's consoles (virsh console). A
// driver that has them implements it; the server serves
// DOMAIN_OPEN_CONSOLE only then.
type DomainConsoles interface {
	// OpenConsole connects to the character device devName (its alias;
	// "" is the first console, or the first serial port), a pty. flags are
	// virDomainConsoleFlags: with DomainConsoleForce, a session already
	// open on the device is closed; otherwise it makes this open fail.
	// The returned stream ends (io.EOF) when the device goes away or
	// another session takes it over.
	OpenConsole(ctx context.Context, dom libvirt.Domain, devName string, flags libvirt.DomainConsoleFlags) (io.ReadWriteCloser, error)
}

// DomainScreenshots takes pictures of a running domain's screens (virsh
// screenshot); the server serves DOMAIN_SCREENSHOT only for a driver that
// implements it.
type DomainScreenshots interface {
	// Screenshot returns the picture of the screen and its MIME type.
	Screenshot(ctx context.Context, dom libvirt.Domain, screen uint32, flags uint32) (io.ReadCloser, string, error)
}
