package network

import (
	"context"
	"fmt"
	"strings"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
)

// maxBridgeID is libvirt's MAX_BRIDGE_ID: templates are tried from 0 up
// to this.
const maxBridgeID = 256

// bridgeInUse reports whether another network than self uses the bridge.
// The caller holds d.mu.
func (d *Driver) bridgeInUse(name string, self string) bool {
	for _, o := range d.byName {
		if o.def.Name == self {
			continue
		}
		for _, def := range []*libvirtxml.Network{o.def, o.next, o.live} {
			if def != nil && def.Bridge != nil && def.Bridge.Name == name && forwardMode(def) != modeBridge {
				return true
			}
		}
	}
	return false
}

// allocateBridge is networkFindUnusedBridgeName: the first name the
// template gives that no network uses and no host device has.
func (d *Driver) allocateBridge(self string) func(string) (string, error) {
	return func(tmpl string) (string, error) {
		for id := 0; id < maxBridgeID; id++ {
			name := strings.Replace(tmpl, "%d", fmt.Sprint(id), 1)
			if !d.bridgeInUse(name, self) && !d.opts.LinkExists(name) {
				return name, nil
			}
		}
		return "", compat.Errorf(libvirt.ErrInternalError, compat.FromNetwork, "Bridge generation exceeded max id %d", maxBridgeID)
	}
}

// prepare parses a definition and fills in libvirt's define-time
// defaults, checking it against the networks that exist: the caller
// holds d.mu.
func (d *Driver) prepare(doc string) (*libvirtxml.Network, *object, error) {
	def, err := parse(doc)
	if err != nil {
		return nil, nil, err
	}
	// virNetworkObjAssignDef: a UUID names one network, a name one UUID.
	existing := d.byName[def.Name]
	if def.UUID != "" {
		u, _ := compat.ParseUUID(def.UUID)
		for _, o := range d.byName {
			if o.def.UUID == compat.FormatUUID(u) && o.def.Name != def.Name {
				return nil, nil, compat.Errorf(libvirt.ErrOperationFailed, compat.FromNetwork,
					"network '%s' is already defined with uuid %s", o.def.Name, o.def.UUID)
			}
		}
		if existing != nil && existing.def.UUID != compat.FormatUUID(u) {
			return nil, nil, compat.Errorf(libvirt.ErrOperationFailed, compat.FromNetwork,
				"network '%s' already exists with uuid %s", existing.def.Name, existing.def.UUID)
		}
	} else if existing != nil {
		// A redefinition without a UUID keeps the network's.
		def.UUID = existing.def.UUID
	}
	// Redefining keeps the bridge and MAC the network already has.
	if existing != nil && forwardMode(def) != modeBridge && (def.Bridge == nil || def.Bridge.Name == "") &&
		existing.def.Bridge != nil {
		def.Bridge = &libvirtxml.NetworkBridge{Name: existing.def.Bridge.Name, STP: bridgeSTP(def), Delay: bridgeDelay(def)}
		if def.MAC == nil && existing.def.MAC != nil {
			def.MAC = &libvirtxml.NetworkMAC{Address: existing.def.MAC.Address}
		}
	}
	if err := fillDefaults(def, d.allocateBridge(def.Name)); err != nil {
		return nil, nil, err
	}
	if forwardMode(def) != modeBridge && d.bridgeInUse(def.Bridge.Name, def.Name) {
		return nil, nil, compat.Errorf(libvirt.ErrInternalError, compat.FromNetwork, "bridge name '%s' already in use.", def.Bridge.Name)
	}
	return def, existing, nil
}

func bridgeSTP(def *libvirtxml.Network) string {
	if def.Bridge != nil {
		return def.Bridge.STP
	}
	return ""
}

func bridgeDelay(def *libvirtxml.Network) string {
	if def.Bridge != nil {
		return def.Bridge.Delay
	}
	return ""
}

// NetworkDefineXML implements driver.Networks (virNetworkDefineXML and,
// with flags, virNetworkDefineXMLFlags: VALIDATE is the only flag, and
// govirtd validates always).
func (d *Driver) NetworkDefineXML(ctx context.Context, doc string, flags uint32) (libvirt.Network, error) {
	if flags&^uint32(libvirt.NetworkDefineValidate) != 0 {
		return libvirt.Network{}, compat.Errorf(libvirt.ErrInvalidArg, compat.FromNetwork, "unsupported flags (0x%x) in function networkDefineXMLFlags", flags&^uint32(libvirt.NetworkDefineValidate))
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	def, o, err := d.prepare(doc)
	if err != nil {
		return libvirt.Network{}, err
	}
	if err := d.saveConfig(def); err != nil {
		return libvirt.Network{}, err
	}
	switch {
	case o == nil:
		o = &object{def: def, persistent: true}
		d.byName[def.Name] = o
	case o.live != nil:
		// Takes effect at the next start, as libvirt's newDef.
		if !o.persistent {
			o.def = def
		} else {
			o.next = def
		}
		o.persistent = true
	default:
		o.def, o.next, o.persistent = def, nil, true
	}
	d.emit(o, libvirt.NetworkEventDefined)
	return o.ref(), nil
}

// NetworkCreateXML implements driver.Networks: a transient network,
// started at once.
func (d *Driver) NetworkCreateXML(ctx context.Context, doc string, flags uint32) (libvirt.Network, error) {
	if flags&^uint32(libvirt.NetworkCreateValidate) != 0 {
		return libvirt.Network{}, compat.Errorf(libvirt.ErrInvalidArg, compat.FromNetwork, "unsupported flags (0x%x) in function networkCreateXMLFlags", flags&^uint32(libvirt.NetworkCreateValidate))
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	def, existing, err := d.prepare(doc)
	if err != nil {
		return libvirt.Network{}, err
	}
	if existing != nil {
		if existing.live != nil {
			return libvirt.Network{}, compat.Errorf(libvirt.ErrOperationInvalid, compat.FromNetwork, "network is already active as '%s'", existing.def.Name)
		}
		return libvirt.Network{}, compat.Errorf(libvirt.ErrOperationFailed, compat.FromNetwork, "network '%s' already exists with uuid %s", existing.def.Name, existing.def.UUID)
	}
	o := &object{def: def}
	d.byName[def.Name] = o
	if err := d.start(ctx, o); err != nil {
		delete(d.byName, def.Name)
		return libvirt.Network{}, err
	}
	return o.ref(), nil
}

// NetworkUndefine implements driver.Networks. An active network becomes
// transient and goes away when it stops.
func (d *Driver) NetworkUndefine(ctx context.Context, n libvirt.Network) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	o, err := d.get(n)
	if err != nil {
		return err
	}
	if !o.persistent {
		return compat.Errorf(libvirt.ErrOperationInvalid, compat.FromNetwork, "can't undefine transient network")
	}
	if err := d.saveAutostart(o.def.Name, false); err != nil {
		return err
	}
	if err := removeFile(d.configPath(o.def.Name)); err != nil {
		return fmt.Errorf("undefine network %s: %w", o.def.Name, err)
	}
	o.autostart, o.persistent, o.next = false, false, nil
	d.emit(o, libvirt.NetworkEventUndefined)
	if o.live == nil {
		delete(d.byName, o.def.Name)
	}
	return nil
}
