// Package driver declares what the RPC server needs from a hypervisor
// driver. The server knows connections and procedures; a driver knows
// domains and the host. driver/qemu implements it with real QEMU processes.
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

// Driver is a hypervisor driver as the server sees it. Methods return
// *compat.Error (possibly wrapped) for failures a client should see in
// libvirt's terms; any other error reaches the client as an internal error.
type Driver interface {
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
	NodeInfo() NodeInfo

	// ListAllDomains returns the domains matching libvirt's
	// virConnectListAllDomainsFlags.
	ListAllDomains(ctx context.Context, flags libvirt.ConnectListAllDomainsFlags) ([]libvirt.Domain, error)
}
