package server

import (
	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver"
)

// maxNetworkList is REMOTE_NETWORK_LIST_MAX.
const maxNetworkList = 16384

// registerNetworkHandlers serves the virtual network procedures from the
// network driver (driver/network).
func registerNetworkHandlers(t *Table, n driver.Networks) {
	t.ConnectListAllNetworks(func(c *Call, a *libvirt.ConnectListAllNetworksArgs) (*libvirt.ConnectListAllNetworksRet, error) {
		nets, err := n.ListAllNetworks(c.Ctx, a.Flags)
		if err != nil {
			return nil, err
		}
		ret := &libvirt.ConnectListAllNetworksRet{Ret: uint32(len(nets))}
		if a.NeedResults != 0 {
			ret.Nets = nets
		}
		return ret, nil
	})
	t.ConnectNumOfNetworks(func(c *Call) (*libvirt.ConnectNumOfNetworksRet, error) {
		return &libvirt.ConnectNumOfNetworksRet{Num: int32(len(n.NetworkNames(true)))}, nil
	})
	t.ConnectNumOfDefinedNetworks(func(c *Call) (*libvirt.ConnectNumOfDefinedNetworksRet, error) {
		return &libvirt.ConnectNumOfDefinedNetworksRet{Num: int32(len(n.NetworkNames(false)))}, nil
	})
	list := func(active bool, max int32) ([]string, error) {
		if max < 0 || max > maxNetworkList {
			return nil, compat.Errorf(libvirt.ErrRPC, compat.FromRPC, "maxnames > REMOTE_NETWORK_LIST_MAX")
		}
		names := n.NetworkNames(active)
		if len(names) > int(max) {
			names = names[:max]
		}
		return names, nil
	}
	t.ConnectListNetworks(func(c *Call, a *libvirt.ConnectListNetworksArgs) (*libvirt.ConnectListNetworksRet, error) {
		names, err := list(true, a.Maxnames)
		return &libvirt.ConnectListNetworksRet{Names: names}, err
	})
	t.ConnectListDefinedNetworks(func(c *Call, a *libvirt.ConnectListDefinedNetworksArgs) (*libvirt.ConnectListDefinedNetworksRet, error) {
		names, err := list(false, a.Maxnames)
		return &libvirt.ConnectListDefinedNetworksRet{Names: names}, err
	})
	t.NetworkLookupByName(func(c *Call, a *libvirt.NetworkLookupByNameArgs) (*libvirt.NetworkLookupByNameRet, error) {
		net, err := n.NetworkLookupByName(c.Ctx, a.Name)
		return &libvirt.NetworkLookupByNameRet{Net: net}, err
	})
	t.NetworkLookupByUUID(func(c *Call, a *libvirt.NetworkLookupByUUIDArgs) (*libvirt.NetworkLookupByUUIDRet, error) {
		net, err := n.NetworkLookupByUUID(c.Ctx, a.UUID)
		return &libvirt.NetworkLookupByUUIDRet{Net: net}, err
	})
	t.NetworkDefineXML(func(c *Call, a *libvirt.NetworkDefineXMLArgs) (*libvirt.NetworkDefineXMLRet, error) {
		net, err := n.NetworkDefineXML(c.Ctx, a.XML, 0)
		return &libvirt.NetworkDefineXMLRet{Net: net}, err
	})
	t.NetworkDefineXMLFlags(func(c *Call, a *libvirt.NetworkDefineXMLFlagsArgs) (*libvirt.NetworkDefineXMLFlagsRet, error) {
		net, err := n.NetworkDefineXML(c.Ctx, a.XML, a.Flags)
		return &libvirt.NetworkDefineXMLFlagsRet{Net: net}, err
	})
	t.NetworkCreateXML(func(c *Call, a *libvirt.NetworkCreateXMLArgs) (*libvirt.NetworkCreateXMLRet, error) {
		net, err := n.NetworkCreateXML(c.Ctx, a.XML, 0)
		return &libvirt.NetworkCreateXMLRet{Net: net}, err
	})
	t.NetworkCreateXMLFlags(func(c *Call, a *libvirt.NetworkCreateXMLFlagsArgs) (*libvirt.NetworkCreateXMLFlagsRet, error) {
		net, err := n.NetworkCreateXML(c.Ctx, a.XML, a.Flags)
		return &libvirt.NetworkCreateXMLFlagsRet{Net: net}, err
	})
	t.NetworkCreate(func(c *Call, a *libvirt.NetworkCreateArgs) error { return n.NetworkCreate(c.Ctx, a.Net) })
	t.NetworkDestroy(func(c *Call, a *libvirt.NetworkDestroyArgs) error { return n.NetworkDestroy(c.Ctx, a.Net) })
	t.NetworkUndefine(func(c *Call, a *libvirt.NetworkUndefineArgs) error { return n.NetworkUndefine(c.Ctx, a.Net) })
	t.NetworkGetXMLDesc(func(c *Call, a *libvirt.NetworkGetXMLDescArgs) (*libvirt.NetworkGetXMLDescRet, error) {
		if a.Flags&^uint32(libvirt.NetworkXMLInactive) != 0 {
			return nil, compat.Errorf(libvirt.ErrInvalidArg, compat.FromNetwork, "unsupported flags (0x%x) in function networkGetXMLDesc", a.Flags&^uint32(libvirt.NetworkXMLInactive))
		}
		x, err := n.NetworkGetXMLDesc(c.Ctx, a.Net, libvirt.NetworkXMLFlags(a.Flags))
		return &libvirt.NetworkGetXMLDescRet{XML: x}, err
	})
	t.NetworkGetBridgeName(func(c *Call, a *libvirt.NetworkGetBridgeNameArgs) (*libvirt.NetworkGetBridgeNameRet, error) {
		b, err := n.NetworkGetBridgeName(c.Ctx, a.Net)
		return &libvirt.NetworkGetBridgeNameRet{Name: b}, err
	})
	t.NetworkGetAutostart(func(c *Call, a *libvirt.NetworkGetAutostartArgs) (*libvirt.NetworkGetAutostartRet, error) {
		on, err := n.NetworkGetAutostart(c.Ctx, a.Net)
		return &libvirt.NetworkGetAutostartRet{Autostart: boolInt(on)}, err
	})
	t.NetworkSetAutostart(func(c *Call, a *libvirt.NetworkSetAutostartArgs) error {
		return n.NetworkSetAutostart(c.Ctx, a.Net, a.Autostart != 0)
	})
	t.NetworkIsActive(func(c *Call, a *libvirt.NetworkIsActiveArgs) (*libvirt.NetworkIsActiveRet, error) {
		on, err := n.NetworkIsActive(c.Ctx, a.Net)
		return &libvirt.NetworkIsActiveRet{Active: boolInt(on)}, err
	})
	t.NetworkIsPersistent(func(c *Call, a *libvirt.NetworkIsPersistentArgs) (*libvirt.NetworkIsPersistentRet, error) {
		on, err := n.NetworkIsPersistent(c.Ctx, a.Net)
		return &libvirt.NetworkIsPersistentRet{Persistent: boolInt(on)}, err
	})
	t.NetworkGetDhcpLeases(func(c *Call, a *libvirt.NetworkGetDhcpLeasesArgs) (*libvirt.NetworkGetDhcpLeasesRet, error) {
		if a.Flags != 0 {
			return nil, compat.Errorf(libvirt.ErrInvalidArg, compat.FromNetwork, "unsupported flags (0x%x) in function networkGetDHCPLeases", a.Flags)
		}
		leases, err := n.NetworkGetDHCPLeases(c.Ctx, a.Net, optString(a.Mac))
		if err != nil {
			return nil, err
		}
		ret := &libvirt.NetworkGetDhcpLeasesRet{Ret: uint32(len(leases))}
		if a.NeedResults != 0 {
			ret.Leases = leases
		}
		return ret, nil
	})
	t.NetworkUpdate(func(c *Call, a *libvirt.NetworkUpdateArgs) error {
		// The wire carries them swapped: libvirt's public API took
		// (section, command) in its first release, and the remote
		// protocol kept that order under the fields' names.
		command, section := libvirt.NetworkUpdateCommand(a.Section), libvirt.NetworkUpdateSection(a.Command)
		return n.NetworkUpdate(c.Ctx, a.Net, command, section, a.ParentIndex, a.XML, a.Flags)
	})
	registerNetworkEventHandlers(t)
}
