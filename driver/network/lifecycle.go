package network

import (
	"context"
	"fmt"
	"os"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
)

func removeFile(path string) error {
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

// NetworkCreate implements driver.Networks (virNetworkCreate: start a
// defined network).
func (d *Driver) NetworkCreate(ctx context.Context, n libvirt.Network) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	o, err := d.get(n)
	if err != nil {
		return err
	}
	return d.start(ctx, o)
}

// NetworkDestroy implements driver.Networks.
func (d *Driver) NetworkDestroy(ctx context.Context, n libvirt.Network) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	o, err := d.get(n)
	if err != nil {
		return err
	}
	if o.live == nil {
		return compat.Errorf(libvirt.ErrOperationInvalid, compat.FromNetwork, "network '%s' is not active", o.def.Name)
	}
	return d.stop(ctx, o)
}

// start runs a network (networkStartNetwork). The caller holds d.mu. On
// failure everything it set up is undone.
func (d *Driver) start(ctx context.Context, o *object) (err error) {
	if o.live != nil {
		return compat.Errorf(libvirt.ErrOperationInvalid, compat.FromNetwork, "network is already active")
	}
	live, err := liveDef(o.def)
	if err != nil {
		return err
	}
	if forwardMode(live) != modeBridge {
		if err := d.startVirtual(ctx, live); err != nil {
			return err
		}
	}
	o.live = live
	if err := d.saveStatus(o); err != nil {
		d.stopVirtual(ctx, live)
		o.live = nil
		return err
	}
	d.log.Info("network started", "network", live.Name, "bridge", bridgeName(live), "mode", forwardMode(live))
	d.emit(o, libvirt.NetworkEventStarted)
	return nil
}

// startVirtual creates the bridge of an isolated or nat network, its
// addresses, firewall rules and dnsmasq (networkStartNetworkVirtual).
func (d *Driver) startVirtual(ctx context.Context, def *libvirtxml.Network) (err error) {
	br := def.Bridge.Name
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	ip := func(args ...string) error { return d.run.Run(ctx, d.opts.IP, args...) }
	if d.opts.LinkExists(br) {
		return compat.Errorf(libvirt.ErrSystemError, compat.FromNetwork, "Unable to create bridge %s: File exists", br)
	}
	if err := ip(bridgeAddArgs(def)...); err != nil {
		return compat.Errorf(libvirt.ErrSystemError, compat.FromNetwork, "Unable to create bridge %s: %v", br, err)
	}
	// Undo runs even when the request was cancelled (the client went).
	undo = append(undo, func() { d.run.Run(context.Background(), d.opts.IP, "link", "del", "dev", br) })
	for _, a := range addrArgs(def) {
		if err := ip(a...); err != nil {
			return fmt.Errorf("set address of bridge %s: %w", br, err)
		}
	}
	if err := ip("link", "set", "dev", br, "up"); err != nil {
		return fmt.Errorf("bring up bridge %s: %w", br, err)
	}
	rules := firewallRules(def)
	if err := d.addRules(ctx, rules); err != nil {
		return err
	}
	undo = append(undo, func() { d.removeRules(context.Background(), rules) })
	if forwardMode(def) == modeNAT {
		if err := d.enableForwarding(); err != nil {
			return err
		}
	}
	if needsDnsmasq(def) {
		if err := d.startDnsmasq(ctx, def); err != nil {
			return err
		}
	}
	return nil
}

// bridgeAddArgs creates the bridge with its MAC address and STP setting.
func bridgeAddArgs(def *libvirtxml.Network) []string {
	args := []string{"link", "add", "name", def.Bridge.Name}
	if def.MAC != nil && def.MAC.Address != "" {
		args = append(args, "address", def.MAC.Address)
	}
	if def.MTU != nil && def.MTU.Size > 0 {
		args = append(args, "mtu", fmt.Sprint(def.MTU.Size))
	}
	stp := "0"
	if def.Bridge.STP == "on" {
		stp = "1"
	}
	// The delay before STP, in one request: the kernel takes the delay
	// while STP is still off and raises it to its 2 s minimum when STP
	// comes on, as it does for libvirt (which sets the delay first).
	return append(args, "type", "bridge", "forward_delay", delayCentis(def), "stp_state", stp)
}

// delayCentis is <bridge delay> (seconds) in the centiseconds ip takes.
func delayCentis(def *libvirtxml.Network) string {
	var s int
	fmt.Sscan(def.Bridge.Delay, &s)
	return fmt.Sprint(s * 100)
}

// addrArgs are the ip commands giving the bridge its <ip> addresses, with
// the broadcast address libvirt sets.
func addrArgs(def *libvirtxml.Network) [][]string {
	var out [][]string
	for i := range def.IPs {
		n, err := ipNet(&def.IPs[i])
		if err != nil {
			continue
		}
		out = append(out, []string{"addr", "add", fmt.Sprintf("%s/%d", n.IP, prefixLen(n)), "broadcast", "+", "dev", def.Bridge.Name})
	}
	return out
}

// stop ends a network. The caller holds d.mu.
func (d *Driver) stop(ctx context.Context, o *object) error {
	if forwardMode(o.live) != modeBridge {
		if err := d.stopVirtual(ctx, o.live); err != nil {
			return err
		}
	}
	removeFile(d.statusPath(o.def.Name))
	d.log.Info("network stopped", "network", o.def.Name)
	o.live = nil
	if o.next != nil {
		o.def, o.next = o.next, nil
	}
	d.emit(o, libvirt.NetworkEventStopped)
	if !o.persistent {
		delete(d.byName, o.def.Name)
	}
	return nil
}

// stopVirtual undoes startVirtual: dnsmasq, the rules, the bridge. It
// runs to the end whatever happens to the request that asked for it: a
// half-stopped network would be neither running nor clean.
func (d *Driver) stopVirtual(_ context.Context, def *libvirtxml.Network) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.stopDnsmasq(def); err != nil {
		return err
	}
	d.removeRules(ctx, firewallRules(def))
	br := def.Bridge.Name
	if d.opts.LinkExists(br) {
		d.run.Run(ctx, d.opts.IP, "link", "set", "dev", br, "down")
		if err := d.run.Run(ctx, d.opts.IP, "link", "del", "dev", br); err != nil {
			return fmt.Errorf("delete bridge %s: %w", br, err)
		}
	}
	return nil
}

// recoverRunning takes over the networks that ran before a daemon
// restart (networkUpdateState): one whose bridge is still there is
// active, with its firewall rules put back and its dnsmasq restarted if
// it died; one whose bridge is gone is cleaned up.
func (d *Driver) recoverRunning(ctx context.Context) {
	ents, _ := os.ReadDir(d.runDir())
	for _, e := range ents {
		name, ok := cutXML(e.Name())
		if !ok {
			continue
		}
		b, err := os.ReadFile(d.statusPath(name))
		if err != nil {
			continue
		}
		live := &libvirtxml.Network{}
		if err := live.Unmarshal(string(b)); err != nil || live.Name != name || validate(live) != nil || (forwardMode(live) != modeBridge && bridgeName(live) == "") {
			d.log.Warn("ignoring unusable network status", "file", e.Name(), "err", err)
			removeFile(d.statusPath(name))
			continue
		}
		o := d.byName[name]
		if o == nil {
			o = &object{def: live}
		} else if o.def.UUID != live.UUID {
			removeFile(d.statusPath(name))
			continue
		}
		if forwardMode(live) != modeBridge {
			if !d.opts.LinkExists(live.Bridge.Name) {
				d.stopDnsmasq(live)
				d.removeRules(ctx, firewallRules(live))
				removeFile(d.statusPath(name))
				continue
			}
			rules := firewallRules(live)
			d.removeRules(ctx, rules)
			if err := d.addRules(ctx, rules); err != nil {
				d.log.Warn("restore firewall rules", "network", name, "err", err)
			}
			if _, alive := d.dnsmasqPID(d.dnsmasqPaths(name)); needsDnsmasq(live) && !alive {
				if err := d.startDnsmasq(ctx, live); err != nil {
					d.log.Warn("restart dnsmasq", "network", name, "err", err)
				}
			}
		}
		o.live = live
		d.byName[name] = o
	}
}

func cutXML(name string) (string, bool) {
	if len(name) > 4 && name[len(name)-4:] == ".xml" {
		return name[:len(name)-4], true
	}
	return "", false
}

// autostartAll starts the autostart networks that are not running.
func (d *Driver) autostartAll(ctx context.Context) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, o := range d.sorted() {
		if o.autostart && o.live == nil {
			if err := d.start(ctx, o); err != nil {
				d.log.Error("autostart network", "network", o.def.Name, "err", err)
			}
		}
	}
}

// defaultNetworkXML is libvirt's /usr/share/libvirt/networks/default.xml.
const defaultNetworkXML = `<network>
  <name>default</name>
  <bridge name='virbr0'/>
  <forward/>
  <ip address='192.168.122.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='192.168.122.2' end='192.168.122.254'/>
    </dhcp>
  </ip>
</network>
`

// defineDefault defines and marks autostart the default network, as
// Debian's libvirt-daemon-config-network does once.
func (d *Driver) defineDefault() error {
	n, err := d.NetworkDefineXML(context.Background(), defaultNetworkXML, 0)
	if err != nil {
		return fmt.Errorf("define the default network: %w", err)
	}
	return d.NetworkSetAutostart(context.Background(), n, true)
}
