package server

import (
	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver"
)

// registerDomainLeaseHandlers answers DOMAIN_INTERFACE_ADDRESSES from the
// network driver's DHCP leases (VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE,
// virsh domifaddr's default), as libvirt's qemuGetDHCPInterfaces: each NIC
// of type network, with the addresses its network leased to its MAC.
func registerDomainLeaseHandlers(t *Table, drv driver.Driver, nets driver.Networks) {
	t.DomainInterfaceAddresses(func(c *Call, a *libvirt.DomainInterfaceAddressesArgs) (*libvirt.DomainInterfaceAddressesRet, error) {
		if a.Flags != 0 {
			return nil, compat.Errorf(libvirt.ErrInvalidArg, compat.FromDomain, "unsupported flags (0x%x) in function qemuDomainInterfaceAddresses", a.Flags)
		}
		// virDomainInterfaceAddresses refuses only the agent source on a
		// read-only connection: leases and the ARP table are host data.
		if libvirt.DomainInterfaceAddressesSource(a.Source) == libvirt.DomainInterfaceAddressesSrcAgent && c.Conn.ReadOnly() {
			return nil, compat.ReadOnly("read only access prevents virDomainInterfaceAddresses")
		}
		if libvirt.DomainInterfaceAddressesSource(a.Source) != libvirt.DomainInterfaceAddressesSrcLease {
			return nil, compat.Errorf(libvirt.ErrArgumentUnsupported, compat.FromDomain, "address source %d is not supported by govirtd (only 'lease')", a.Source)
		}
		active, err := drv.IsActive(c.Ctx, a.Dom)
		if err != nil {
			return nil, err
		}
		if !active {
			return nil, compat.Errorf(libvirt.ErrOperationInvalid, compat.FromDomain, "domain is not running")
		}
		x, err := drv.GetXMLDesc(c.Ctx, a.Dom, 0)
		if err != nil {
			return nil, err
		}
		var def libvirtxml.Domain
		if err := def.Unmarshal(x); err != nil {
			return nil, err
		}
		ret := &libvirt.DomainInterfaceAddressesRet{}
		if def.Devices == nil {
			return ret, nil
		}
		for _, n := range def.Devices.Interfaces {
			if n.Source == nil || n.Source.Network == nil || n.MAC == nil {
				continue
			}
			net, err := nets.NetworkLookupByName(c.Ctx, n.Source.Network.Network)
			if err != nil {
				return nil, err
			}
			leases, err := nets.NetworkGetDHCPLeases(c.Ctx, net, n.MAC.Address)
			if err != nil {
				return nil, err
			}
			if len(leases) == 0 {
				continue
			}
			iface := libvirt.DomainInterface{Hwaddr: libvirt.OptString{n.MAC.Address}}
			if n.Target != nil {
				iface.Name = n.Target.Dev
			}
			for _, l := range leases {
				iface.Addrs = append(iface.Addrs, libvirt.DomainIPAddr{Type: l.Type, Addr: l.Ipaddr, Prefix: l.Prefix})
			}
			ret.Ifaces = append(ret.Ifaces, iface)
		}
		return ret, nil
	})
}
