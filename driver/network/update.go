package network

import (
	"context"
	"encoding/xml"
	"net"
	"strings"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
)

// sectionNames are libvirt's names of the sections virNetworkUpdate
// addresses, for its "can't update" errors.
var sectionNames = map[libvirt.NetworkUpdateSection]string{
	libvirt.NetworkSectionBridge: "bridge", libvirt.NetworkSectionDomain: "domain", libvirt.NetworkSectionIP: "ip",
	libvirt.NetworkSectionIPDhcpRange: "dhcp range", libvirt.NetworkSectionForward: "forward",
	libvirt.NetworkSectionForwardInterface: "forward interface", libvirt.NetworkSectionForwardPf: "forward pf",
	libvirt.NetworkSectionPortgroup: "portgroup", libvirt.NetworkSectionDNSHost: "dns host",
	libvirt.NetworkSectionDNSTxt: "dns txt", libvirt.NetworkSectionDNSSrv: "dns srv",
}

// NetworkUpdate implements virNetworkUpdate for the section tools use
// most, <ip><dhcp><host> (static leases): added, modified or deleted in
// the live network (dnsmasq restarted with them) and/or the persistent
// definition, as the flags say.
func (d *Driver) NetworkUpdate(ctx context.Context, n libvirt.Network, command libvirt.NetworkUpdateCommand, section libvirt.NetworkUpdateSection, parentIndex int32, doc string, flags libvirt.NetworkUpdateFlags) error {
	if flags&^(libvirt.NetworkUpdateAffectLive|libvirt.NetworkUpdateAffectConfig) != 0 {
		return compat.Errorf(libvirt.ErrInvalidArg, compat.FromNetwork, "unsupported flags (0x%x) in function networkUpdate", flags&^(libvirt.NetworkUpdateAffectLive|libvirt.NetworkUpdateAffectConfig))
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	o, err := d.get(n)
	if err != nil {
		return err
	}
	if section != libvirt.NetworkSectionIPDhcpHost {
		if name, ok := sectionNames[section]; ok {
			return compat.Errorf(libvirt.ErrNoSupport, compat.FromNetwork, "can't update '%s' section of network '%s'", name, o.def.Name)
		}
		return compat.Errorf(libvirt.ErrNoSupport, compat.FromNetwork, "can't update unrecognized section of network")
	}
	// VIR_NETWORK_UPDATE_AFFECT_CURRENT: the live network if it runs.
	if flags == 0 {
		flags = libvirt.NetworkUpdateAffectConfig
		if o.live != nil {
			flags = libvirt.NetworkUpdateAffectLive
		}
	}
	if flags&libvirt.NetworkUpdateAffectLive != 0 && o.live == nil {
		return compat.Errorf(libvirt.ErrOperationInvalid, compat.FromNetwork, "network is not running")
	}
	if flags&libvirt.NetworkUpdateAffectConfig != 0 && !o.persistent {
		return compat.Errorf(libvirt.ErrOperationInvalid, compat.FromNetwork, "cannot change persistent config of a transient network")
	}
	if err := wellFormedElement(doc, "host", o.def.Name); err != nil {
		return err
	}
	var host libvirtxml.NetworkDHCPHost
	if err := host.Unmarshal(doc); err != nil {
		return xmlErr("%v", err)
	}
	var newConfig, newLive *libvirtxml.Network
	if flags&libvirt.NetworkUpdateAffectConfig != 0 {
		cur := o.def
		if o.next != nil {
			cur = o.next
		}
		if newConfig, err = updateDHCPHost(cur, command, int(parentIndex), host); err != nil {
			return err
		}
	}
	if flags&libvirt.NetworkUpdateAffectLive != 0 {
		if newLive, err = updateDHCPHost(o.live, command, int(parentIndex), host); err != nil {
			return err
		}
	}
	if newConfig != nil {
		if err := d.saveConfig(newConfig); err != nil {
			return err
		}
		if o.live != nil {
			o.next = newConfig
		} else {
			o.def = newConfig
		}
	}
	if newLive != nil {
		o.live = newLive
		if err := d.saveStatus(o); err != nil {
			return err
		}
		if err := d.reloadDHCPHosts(ctx, newLive); err != nil {
			return err
		}
	}
	return nil
}

// wellFormedElement checks an update's XML: well formed, and the element
// the section takes (virNetworkDefUpdateCheckElementName).
func wellFormedElement(doc, want, network string) error {
	dec := xml.NewDecoder(strings.NewReader(doc))
	for {
		tok, err := dec.Token()
		if err != nil {
			line, _ := dec.InputPos()
			return compat.Errorf(libvirt.ErrXMLDetail, compat.FromNetwork, "(network_update_xml):%d: %v", line, err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if se.Name.Local != want {
				return xmlErr("unexpected element <%s>, expecting <%s>, while updating network '%s'", se.Name.Local, want, network)
			}
			return nil
		}
	}
}

// updateDHCPHost is virNetworkDefUpdateIPDHCPHost on a copy of def.
func updateDHCPHost(def *libvirtxml.Network, command libvirt.NetworkUpdateCommand, parentIndex int, host libvirtxml.NetworkDHCPHost) (*libvirtxml.Network, error) {
	c, err := copyDef(def)
	if err != nil {
		return nil, err
	}
	ip, err := ipForUpdate(c, parentIndex)
	if err != nil {
		return nil, err
	}
	if ip.DHCP == nil {
		ip.DHCP = &libvirtxml.NetworkDHCP{}
	}
	hosts := ip.DHCP.Hosts
	sameMAC := func(a, b string) bool {
		x, err1 := net.ParseMAC(a)
		y, err2 := net.ParseMAC(b)
		return err1 == nil && err2 == nil && x.String() == y.String()
	}
	sameIP := func(a, b string) bool { return a != "" && net.ParseIP(a).Equal(net.ParseIP(b)) }
	unknown := func(s string) string {
		if s == "" {
			return "unknown"
		}
		return s
	}
	if command != libvirt.NetworkUpdateCommandDelete {
		// A whole entry: its address in the <ip>'s family, and a MAC or name.
		if net.ParseIP(host.IP).To4() == nil {
			return nil, compat.Errorf(libvirt.ErrOperationInvalid, compat.FromNetwork, "the address family of a host entry IP must match the address family of the dhcp element's parent")
		}
	}
	switch command {
	case libvirt.NetworkUpdateCommandModify:
		i := -1
		for j, h := range hosts {
			if (host.MAC != "" && sameMAC(host.MAC, h.MAC)) || sameIP(host.IP, h.IP) || (host.Name != "" && host.Name == h.Name) {
				i = j
				break
			}
		}
		if i < 0 {
			return nil, compat.Errorf(libvirt.ErrOperationInvalid, compat.FromNetwork,
				"couldn't locate an existing dhcp host entry with \"mac='%s'\" \"name='%s'\" \"ip='%s'\" in network '%s'", unknown(host.MAC), host.Name, unknown(host.IP), def.Name)
		}
		hosts[i] = host
	case libvirt.NetworkUpdateCommandAddFirst, libvirt.NetworkUpdateCommandAddLast:
		for _, h := range hosts {
			if (host.MAC != "" && sameMAC(host.MAC, h.MAC)) || (host.Name != "" && host.Name == h.Name) || sameIP(host.IP, h.IP) {
				return nil, compat.Errorf(libvirt.ErrOperationInvalid, compat.FromNetwork,
					"there is an existing dhcp host entry in network '%s' that matches \"<host mac='%s' name='%s' ip='%s'/>\"", def.Name, unknown(host.MAC), host.Name, unknown(host.IP))
			}
		}
		if command == libvirt.NetworkUpdateCommandAddFirst {
			hosts = append([]libvirtxml.NetworkDHCPHost{host}, hosts...)
		} else {
			hosts = append(hosts, host)
		}
	case libvirt.NetworkUpdateCommandDelete:
		i := -1
		for j, h := range hosts {
			if (host.MAC == "" || h.MAC == "" || sameMAC(host.MAC, h.MAC)) && (host.Name == "" || host.Name == h.Name) && (host.IP == "" || sameIP(host.IP, h.IP)) {
				i = j
				break
			}
		}
		if i < 0 {
			return nil, compat.Errorf(libvirt.ErrOperationInvalid, compat.FromNetwork, "couldn't locate a matching dhcp host entry in network '%s'", def.Name)
		}
		hosts = append(hosts[:i], hosts[i+1:]...)
	default:
		return nil, compat.Errorf(libvirt.ErrNoSupport, compat.FromNetwork, "unrecognized network update command code %d", command)
	}
	ip.DHCP.Hosts = hosts
	if len(ip.DHCP.Hosts) == 0 && len(ip.DHCP.Ranges) == 0 && len(ip.DHCP.Bootp) == 0 {
		ip.DHCP = nil
	}
	// The result must be a definition govirtd accepts as a whole.
	if err := validate(c); err != nil {
		return nil, err
	}
	return c, nil
}

// ipForUpdate is virNetworkIPDefByIndex: the <ip> at parentIndex, or with
// -1 the one with DHCP, else the first.
func ipForUpdate(def *libvirtxml.Network, parentIndex int) (*libvirtxml.NetworkIP, error) {
	if parentIndex >= 0 {
		if parentIndex >= len(def.IPs) {
			return nil, compat.Errorf(libvirt.ErrOperationInvalid, compat.FromNetwork,
				"couldn't update dhcp host entry - no <ip> element found at index %d in network '%s'", parentIndex, def.Name)
		}
		return &def.IPs[parentIndex], nil
	}
	for i := range def.IPs {
		if d := def.IPs[i].DHCP; d != nil && (len(d.Ranges) > 0 || len(d.Hosts) > 0) {
			return &def.IPs[i], nil
		}
	}
	if len(def.IPs) > 0 {
		return &def.IPs[0], nil
	}
	return nil, compat.Errorf(libvirt.ErrOperationInvalid, compat.FromNetwork,
		"can't update 'host' section of network '%s' - no <ip> element in network", def.Name)
}

// reloadDHCPHosts restarts the running network's dnsmasq with its new
// static hosts, which are lines of its configuration (see dnsmasqConf).
// libvirt sends SIGHUP to have dnsmasq re-read its hosts file instead.
// The leases survive: dnsmasq reads its leases file when it starts.
func (d *Driver) reloadDHCPHosts(ctx context.Context, def *libvirtxml.Network) error {
	if !needsDnsmasq(def) {
		return nil
	}
	if err := d.stopDnsmasq(def); err != nil {
		return err
	}
	return d.startDnsmasq(ctx, def)
}
