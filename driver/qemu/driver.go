// Package qemu is govirtd's QEMU driver: the host it runs on, and domains as
// real QEMU processes controlled over QMP.
package qemu

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"sync"
	"sync/atomic"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver"
	"github.com/govirtd/govirtd/driver/qemu/caps"
	"github.com/govirtd/govirtd/driver/qemu/snapshot"
	"github.com/govirtd/govirtd/driver/qemu/store"
)

// Options configures the driver.
type Options struct {
	HostUUID string // this host's UUID, stable across restarts
	Hostname string // the name reported to clients
	StateDir string
	Log      *slog.Logger
	// QemuConfig is a qemu.conf-syntax file (migration address and ports).
	QemuConfig string
	// SelfURI is a libvirt URI other hosts can reach this daemon at; it
	// travels in migration cookies so a govirtd peer can ask this host
	// about a guest after a failure.
	SelfURI string
	// ListenAddr is the daemon's TCP listen address, a fallback host for
	// incoming migration URIs.
	ListenAddr string
	// FaultInjection lists "<step>:<action>" faults (see faults.go).
	FaultInjection []string
	// Networks finds the bridges of <interface type='network'> (netif.go);
	// nil means such NICs cannot start.
	Networks NetworkBridges
	// Volumes finds the storage pool volumes of <disk type='volume'>; nil
	// means such disks cannot start.
	Volumes VolumeResolver
}

// VolumeResolver is the part of the storage driver that domains use.
type VolumeResolver interface {
	ResolveVolume(ctx context.Context, pool, vol string) (driver.VolumeSource, error)
}

// Driver is the QEMU driver.
type Driver struct {
	opts  Options
	host  *caps.Host
	store *store.Store
	log   *slog.Logger
	// snaps is the domain snapshot metadata (snapshot.go).
	snaps *snapshot.Store

	mu     sync.RWMutex
	byUUID map[libvirt.UUID]*domain
	byName map[string]*domain
	// sorted is every domain by name, rebuilt after a change (nil).
	sorted []*domain
	// mapPeak is the most domains byUUID held since it was last shrunk.
	mapPeak int
	lastID  atomic.Int32

	sinkMu sync.RWMutex
	sink   func(driver.Event)

	qconf qemuConf
	// displayPorts hands out autoport VNC/SPICE ports.
	// incomingErrors are why incoming migrations failed, for Finish.
	incomingErrors incomingErrors
	displayPorts   *portAllocator
	faults         faults
	// consoles are the open `virsh console` sessions.
	consoles consoleSessions
	// portsInUse are incoming migration ports handed out and not yet
	// released (QEMU binds them a moment later).
	portMu     sync.Mutex
	portsInUse map[int]bool

	// ctx lives as long as the driver: background work (event handling,
	// exit handling) uses it rather than a caller's request context.
	ctx    context.Context
	cancel context.CancelFunc
}

var _ driver.Driver = (*Driver)(nil)

// New probes the host and its QEMU binaries once (libvirt re-probes on its
// first use after a restart, which cost seconds in the captures), loads the
// stored domains, reattaches to QEMU processes that survived a daemon
// restart, and starts autostart domains.
func New(ctx context.Context, opts Options) (*Driver, error) {
	host, err := caps.Probe(ctx, caps.Options{HostUUID: opts.HostUUID})
	if err != nil {
		return nil, fmt.Errorf("probe host: %w", err)
	}
	for _, w := range host.Warnings() {
		opts.Log.Warn("host probe", "warning", w)
	}
	st, err := store.Open(opts.StateDir)
	if err != nil {
		return nil, err
	}
	snaps, err := snapshot.Open(filepath.Join(opts.StateDir, "qemu", "snapshot"))
	if err != nil {
		return nil, err
	}
	qconf, err := loadQemuConf(opts.QemuConfig)
	if err != nil {
		return nil, err
	}
	fl, err := parseFaults(opts.FaultInjection)
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithCancel(context.Background())
	d := &Driver{opts: opts, host: host, store: st, snaps: snaps, log: opts.Log, qconf: qconf, faults: fl, displayPorts: newPortAllocator(qconf.RemoteDisplayPortMin, qconf.RemoteDisplayPortMax), portsInUse: map[int]bool{},
		byUUID: map[libvirt.UUID]*domain{}, byName: map[string]*domain{}, ctx: dctx, cancel: cancel}
	if err := d.load(ctx); err != nil {
		cancel()
		return nil, err
	}
	return d, nil
}

// Close stops background work. Running QEMU processes are left running: a
// restarted daemon finds them again.
func (d *Driver) Close() {
	d.cancel()
	for _, dom := range d.all() {
		dom.mu.Lock()
		if dom.mon != nil {
			dom.mon.Close()
		}
		dom.mu.Unlock()
	}
}

// SetEventSink implements driver.Driver.
func (d *Driver) SetEventSink(sink func(driver.Event)) {
	d.sinkMu.Lock()
	d.sink = sink
	d.sinkMu.Unlock()
}

func (d *Driver) emit(ev driver.Event) {
	d.sinkMu.RLock()
	sink := d.sink
	d.sinkMu.RUnlock()
	if sink != nil {
		sink(ev)
	}
}

func (d *Driver) emitLifecycle(dom libvirt.Domain, event libvirt.DomainEventType, detail int32) {
	d.emit(driver.Event{ID: libvirt.DomainEventIDLifecycle, Dom: dom, Event: int32(event), Detail: detail})
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
	if err != nil || u.Scheme != "qemu" || u.Host != "" {
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

// DomainCapabilities implements driver.Driver.
func (d *Driver) DomainCapabilities(emulator, arch, machine, virttype string) (string, error) {
	return d.host.DomainCapabilities(emulator, arch, machine, virttype)
}

// NodeInfo implements driver.Driver.
func (d *Driver) NodeInfo() driver.NodeInfo {
	n := d.host.NodeInfo()
	return driver.NodeInfo{Model: n.Model, Memory: n.Memory, CPUs: n.CPUs, MHz: n.MHz, Nodes: n.Nodes, Sockets: n.Sockets, Cores: n.Cores, Threads: n.Threads}
}
