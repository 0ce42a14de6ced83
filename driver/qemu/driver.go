// Package qemu is govirtd's QEMU driver: the host it runs on, and (as the
// driver grows) domains as real QEMU processes controlled over QMP.
package qemu

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver"
	"github.com/govirtd/govirtd/driver/qemu/caps"
)

// Options configures the driver.
type Options struct {
	HostUUID string // this host's UUID, stable across restarts
	Hostname string // the name reported to clients
	StateDir string
	Log      *slog.Logger
}

// Driver is the QEMU driver.
type Driver struct {
	opts Options
	host *caps.Host
}

var _ driver.Driver = (*Driver)(nil)

// New probes the host and its QEMU binaries once; the result is reused for
// every call (libvirt re-probes on its first use after a restart, which
// cost seconds in the captures).
func New(ctx context.Context, opts Options) (*Driver, error) {
	host, err := caps.Probe(ctx, caps.Options{HostUUID: opts.HostUUID})
	if err != nil {
		return nil, fmt.Errorf("probe host: %w", err)
	}
	for _, w := range host.Warnings() {
		opts.Log.Warn("host probe", "warning", w)
	}
	return &Driver{opts: opts, host: host}, nil
}

// Type implements driver.Driver.
func (d *Driver) Type() string { return "QEMU" }

// URI implements driver.Driver.
func (d *Driver) URI() string { return "qemu:///system" }

// AcceptsURI implements driver.Driver: "" (the default driver) and
// qemu:///system are ours; any other driver name is refused as libvirtd
// refuses a URI no driver claims.
func (d *Driver) AcceptsURI(name string) error {
	if name == "" {
		return nil
	}
	u, err := url.Parse(name)
	if err != nil || u.Scheme != "qemu" {
		return compat.Errorf(libvirt.ErrNoConnect, compat.FromNone, "%s", name)
	}
	if u.Host != "" {
		// The client strips transport and host before CONNECT_OPEN; a host
		// here means a remote URI the daemon cannot serve itself.
		return compat.Errorf(libvirt.ErrNoConnect, compat.FromNone, "%s", name)
	}
	if u.Path != "/system" {
		return compat.Errorf(libvirt.ErrInternalError, compat.FromQEMU, "unexpected QEMU URI path '%s', try qemu:///system", u.Path)
	}
	return nil
}

// Version implements driver.Driver.
func (d *Driver) Version() uint64 { return d.host.QEMUVersion() }

// Hostname implements driver.Driver.
func (d *Driver) Hostname() string { return d.opts.Hostname }

// Capabilities implements driver.Driver.
func (d *Driver) Capabilities() string { return d.host.CapabilitiesXML() }

// NodeInfo implements driver.Driver.
func (d *Driver) NodeInfo() driver.NodeInfo {
	n := d.host.NodeInfo()
	return driver.NodeInfo{Model: n.Model, Memory: n.Memory, CPUs: n.CPUs, MHz: n.MHz, Nodes: n.Nodes, Sockets: n.Sockets, Cores: n.Cores, Threads: n.Threads}
}

// ListAllDomains implements driver.Driver. Domains arrive with the domain
// store; until then the host has none.
func (d *Driver) ListAllDomains(ctx context.Context, flags libvirt.ConnectListAllDomainsFlags) ([]libvirt.Domain, error) {
	return nil, nil
}
