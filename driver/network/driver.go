// Package network is govirtd's virtual network driver, as libvirt 9.0's
// src/network: networks defined by XML, kept under <state_dir>/network,
// and run as a Linux bridge with an address, iptables rules (isolated or
// NAT) and a dnsmasq for DHCP and DNS; or, in forward mode 'bridge', as a
// name for a host bridge that exists already.
package network

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"sync"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver"
)

// Options configures the driver.
type Options struct {
	StateDir string
	Log      *slog.Logger
	// Runner runs ip, iptables and dnsmasq; nil means ExecRunner.
	Runner Runner
	// Program names or paths; empty means "ip", "iptables", "dnsmasq".
	IP, Iptables, Dnsmasq string
	// SysctlDir is where ip_forward is switched on ("/proc/sys"); empty
	// leaves it alone.
	SysctlDir string
	// DefineDefault defines libvirt's 'default' network (NAT on
	// 192.168.122.0/24, virbr0, autostarted) when the driver starts on a
	// state directory that has never had networks, as Debian's libvirt
	// package does on installation.
	DefineDefault bool
	// LinkExists reports whether a network device exists; nil asks the
	// kernel.
	LinkExists func(name string) bool
}

// Driver is the network driver.
type Driver struct {
	opts Options
	log  *slog.Logger
	run  Runner

	mu     sync.Mutex
	byName map[string]*object
	sink   func(driver.NetworkEvent)
}

// object is one network.
type object struct {
	// def is the definition: the persistent one, or a transient network's.
	def *libvirtxml.Network
	// next is a persistent definition redefined while the network ran; it
	// becomes def when the network stops, as libvirt's newDef.
	next *libvirtxml.Network
	// live is the running network's definition; nil when inactive.
	live       *libvirtxml.Network
	persistent bool
	autostart  bool
}

func (o *object) ref() libvirt.Network {
	u, _ := compat.ParseUUID(o.def.UUID)
	return libvirt.Network{Name: o.def.Name, UUID: u}
}

var _ driver.Networks = (*Driver)(nil)

// New loads the defined networks, takes over the ones still running from
// before a daemon restart, defines the default network on a fresh state
// directory and starts the autostart networks.
func New(ctx context.Context, o Options) (*Driver, error) {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Runner == nil {
		o.Runner = ExecRunner{}
	}
	for p, def := range map[*string]string{&o.IP: "ip", &o.Iptables: "iptables", &o.Dnsmasq: "dnsmasq"} {
		if *p == "" {
			*p = def
		}
	}
	if o.LinkExists == nil {
		o.LinkExists = func(name string) bool {
			_, err := net.InterfaceByName(name)
			return err == nil
		}
	}
	d := &Driver{opts: o, log: o.Log, run: o.Runner, byName: map[string]*object{}}
	_, err := os.Stat(d.configDir())
	fresh := os.IsNotExist(err)
	for _, dir := range []string{d.configDir(), d.autostartDir(), d.runDir()} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("create network state directory: %w", err)
		}
	}
	if err := d.loadConfigs(); err != nil {
		return nil, err
	}
	d.recoverRunning(ctx)
	if fresh && o.DefineDefault {
		if err := d.defineDefault(); err != nil {
			return nil, err
		}
	}
	d.autostartAll(ctx)
	return d, nil
}

func (d *Driver) configDir() string    { return filepath.Join(d.opts.StateDir, "network") }
func (d *Driver) autostartDir() string { return filepath.Join(d.configDir(), "autostart") }
func (d *Driver) runDir() string       { return filepath.Join(d.configDir(), "run") }

// SetNetworkEventSink implements driver.Networks.
func (d *Driver) SetNetworkEventSink(fn func(driver.NetworkEvent)) {
	d.mu.Lock()
	d.sink = fn
	d.mu.Unlock()
}

// emit sends a lifecycle event; the caller holds d.mu.
func (d *Driver) emit(o *object, ev libvirt.NetworkEventLifecycleType) {
	if d.sink != nil {
		d.sink(driver.NetworkEvent{Net: o.ref(), Event: int32(ev)})
	}
}

func noNetworkName(name string) error {
	return compat.Errorf(libvirt.ErrNoNetwork, compat.FromNetwork, "no network with matching name '%s'", name)
}

// get finds a network by its UUID (as libvirt's driver does), the name
// being only what the error shows. The caller holds d.mu.
func (d *Driver) get(n libvirt.Network) (*object, error) {
	uuid := compat.FormatUUID(n.UUID)
	for _, o := range d.byName {
		if o.def.UUID == uuid {
			return o, nil
		}
	}
	return nil, compat.Errorf(libvirt.ErrNoNetwork, compat.FromNetwork, "no network with matching uuid '%s' (%s)", uuid, n.Name)
}

func (d *Driver) sorted() []*object {
	out := make([]*object, 0, len(d.byName))
	for _, o := range d.byName {
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].def.Name < out[j].def.Name })
	return out
}

// ListAllNetworks implements driver.Networks with
// virConnectListAllNetworksFlags' filters.
func (d *Driver) ListAllNetworks(ctx context.Context, flags libvirt.ConnectListAllNetworksFlags) ([]libvirt.Network, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	pick := func(set, a, b libvirt.ConnectListAllNetworksFlags, isA bool) bool {
		if flags&(a|b) == 0 || flags&(a|b) == a|b {
			return true
		}
		if flags&a != 0 {
			return isA
		}
		return !isA
	}
	var out []libvirt.Network
	for _, o := range d.sorted() {
		if !pick(flags, libvirt.ConnectListNetworksActive, libvirt.ConnectListNetworksInactive, o.live != nil) ||
			!pick(flags, libvirt.ConnectListNetworksPersistent, libvirt.ConnectListNetworksTransient, o.persistent) ||
			!pick(flags, libvirt.ConnectListNetworksAutostart, libvirt.ConnectListNetworksNoAutostart, o.autostart) {
			continue
		}
		out = append(out, o.ref())
	}
	return out, nil
}

// NetworkNames implements driver.Networks.
func (d *Driver) NetworkNames(active bool) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for _, o := range d.sorted() {
		if (o.live != nil) == active {
			out = append(out, o.def.Name)
		}
	}
	return out
}

// NetworkLookupByName implements driver.Networks.
func (d *Driver) NetworkLookupByName(ctx context.Context, name string) (libvirt.Network, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	o, ok := d.byName[name]
	if !ok {
		return libvirt.Network{}, noNetworkName(name)
	}
	return o.ref(), nil
}

// NetworkLookupByUUID implements driver.Networks.
func (d *Driver) NetworkLookupByUUID(ctx context.Context, uuid libvirt.UUID) (libvirt.Network, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := compat.FormatUUID(uuid)
	for _, o := range d.byName {
		if o.def.UUID == s {
			return o.ref(), nil
		}
	}
	return libvirt.Network{}, compat.Errorf(libvirt.ErrNoNetwork, compat.FromNetwork, "no network with matching uuid '%s'", s)
}

// NetworkGetXMLDesc implements driver.Networks: the live definition of an
// active network unless VIR_NETWORK_XML_INACTIVE asks for the persistent
// one (the redefined one, if the network was redefined while running).
func (d *Driver) NetworkGetXMLDesc(ctx context.Context, n libvirt.Network, flags libvirt.NetworkXMLFlags) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	o, err := d.get(n)
	if err != nil {
		return "", err
	}
	def := o.live
	if def == nil || flags&libvirt.NetworkXMLInactive != 0 {
		def = o.def
		if o.next != nil {
			def = o.next
		}
	}
	return format(def)
}

// NetworkGetBridgeName implements driver.Networks.
func (d *Driver) NetworkGetBridgeName(ctx context.Context, n libvirt.Network) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	o, err := d.get(n)
	if err != nil {
		return "", err
	}
	if o.def.Bridge == nil || o.def.Bridge.Name == "" {
		return "", compat.Errorf(libvirt.ErrInternalError, compat.FromNetwork, "network '%s' does not have a bridge name.", o.def.Name)
	}
	return o.def.Bridge.Name, nil
}

// NetworkGetAutostart implements driver.Networks.
func (d *Driver) NetworkGetAutostart(ctx context.Context, n libvirt.Network) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	o, err := d.get(n)
	if err != nil {
		return false, err
	}
	return o.autostart, nil
}

// NetworkSetAutostart implements driver.Networks.
func (d *Driver) NetworkSetAutostart(ctx context.Context, n libvirt.Network, on bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	o, err := d.get(n)
	if err != nil {
		return err
	}
	if !o.persistent {
		return compat.Errorf(libvirt.ErrOperationInvalid, compat.FromNetwork, "cannot set autostart for transient network")
	}
	if err := d.saveAutostart(o.def.Name, on); err != nil {
		return err
	}
	o.autostart = on
	return nil
}

// NetworkIsActive implements driver.Networks.
func (d *Driver) NetworkIsActive(ctx context.Context, n libvirt.Network) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	o, err := d.get(n)
	if err != nil {
		return false, err
	}
	return o.live != nil, nil
}

// NetworkIsPersistent implements driver.Networks.
func (d *Driver) NetworkIsPersistent(ctx context.Context, n libvirt.Network) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	o, err := d.get(n)
	if err != nil {
		return false, err
	}
	return o.persistent, nil
}

// Bridge returns the bridge a guest NIC of the named network plugs its tap
// into: the network's own bridge, or the host bridge of a forward mode
// 'bridge' network. The network must be active, as libvirt requires.
func (d *Driver) Bridge(name string) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	o, ok := d.byName[name]
	if !ok {
		return "", noNetworkName(name)
	}
	if o.live == nil {
		return "", compat.Errorf(libvirt.ErrOperationInvalid, compat.FromNetwork, "network '%s' is not active", name)
	}
	if bridgeName(o.live) == "" {
		return "", compat.Errorf(libvirt.ErrConfigUnsupported, compat.FromNetwork, "network '%s' has no bridge: <forward> interfaces are not supported by govirtd", name)
	}
	return bridgeName(o.live), nil
}
