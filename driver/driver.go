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
	Domains
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

// Event is a domain event for the clients that registered for it.
type Event struct {
	ID  libvirt.DomainEventID
	Dom libvirt.Domain
	// Lifecycle event and detail, for ID == DomainEventIDLifecycle.
	Event, Detail int32
}
