package server

import (
	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
)

// registerEmptyDriverHandlers answers for the drivers govirtd does not have
// yet — networks, storage, network filters, host interfaces, node devices,
// secrets — as a libvirtd host without any such objects answers: empty
// lists and libvirt's "not found" errors. Management apps and test suites
// enumerate all of these when they connect and stop at the first
// unexpected error, so "not supported" here would break them.
//
// Each driver that exists replaces its part (see registerHandlers).
func registerEmptyDriverHandlers(t *Table, s *Server) {
	if s.networks == nil {
		registerEmptyNetworkHandlers(t)
	} else {
		registerNetworkHandlers(t, s.networks)
		registerDomainLeaseHandlers(t, s.drv, s.networks)
	}
	if s.storage == nil {
		registerEmptyStorageHandlers(t)
	} else {
		registerStorageHandlers(t, s.storage)
	}
	if s.secrets == nil {
		registerEmptySecretHandlers(t)
	}
	registerEmptyOtherHandlers(t)
}

func registerEmptyNetworkHandlers(t *Table) {
	t.ConnectListAllNetworks(func(c *Call, a *libvirt.ConnectListAllNetworksArgs) (*libvirt.ConnectListAllNetworksRet, error) {
		return &libvirt.ConnectListAllNetworksRet{}, nil
	})
	t.ConnectNumOfNetworks(func(c *Call) (*libvirt.ConnectNumOfNetworksRet, error) {
		return &libvirt.ConnectNumOfNetworksRet{}, nil
	})
	t.ConnectNumOfDefinedNetworks(func(c *Call) (*libvirt.ConnectNumOfDefinedNetworksRet, error) {
		return &libvirt.ConnectNumOfDefinedNetworksRet{}, nil
	})
	t.ConnectListNetworks(func(c *Call, a *libvirt.ConnectListNetworksArgs) (*libvirt.ConnectListNetworksRet, error) {
		return &libvirt.ConnectListNetworksRet{}, checkMaxList(a.Maxnames, "maxnames")
	})
	t.ConnectListDefinedNetworks(func(c *Call, a *libvirt.ConnectListDefinedNetworksArgs) (*libvirt.ConnectListDefinedNetworksRet, error) {
		return &libvirt.ConnectListDefinedNetworksRet{}, checkMaxList(a.Maxnames, "maxnames")
	})
	t.NetworkLookupByName(func(c *Call, a *libvirt.NetworkLookupByNameArgs) (*libvirt.NetworkLookupByNameRet, error) {
		return nil, compat.Errorf(libvirt.ErrNoNetwork, compat.FromNetwork, "no network with matching name '%s'", a.Name)
	})
	t.NetworkLookupByUUID(func(c *Call, a *libvirt.NetworkLookupByUUIDArgs) (*libvirt.NetworkLookupByUUIDRet, error) {
		return nil, compat.Errorf(libvirt.ErrNoNetwork, compat.FromNetwork, "no network with matching uuid '%s'", compat.FormatUUID(a.UUID))
	})
}

func registerEmptyStorageHandlers(t *Table) {
	t.ConnectListAllStoragePools(func(c *Call, a *libvirt.ConnectListAllStoragePoolsArgs) (*libvirt.ConnectListAllStoragePoolsRet, error) {
		return &libvirt.ConnectListAllStoragePoolsRet{}, nil
	})
	t.ConnectNumOfStoragePools(func(c *Call) (*libvirt.ConnectNumOfStoragePoolsRet, error) {
		return &libvirt.ConnectNumOfStoragePoolsRet{}, nil
	})
	t.ConnectNumOfDefinedStoragePools(func(c *Call) (*libvirt.ConnectNumOfDefinedStoragePoolsRet, error) {
		return &libvirt.ConnectNumOfDefinedStoragePoolsRet{}, nil
	})
	t.ConnectListStoragePools(func(c *Call, a *libvirt.ConnectListStoragePoolsArgs) (*libvirt.ConnectListStoragePoolsRet, error) {
		return &libvirt.ConnectListStoragePoolsRet{}, checkMaxList(a.Maxnames, "maxnames")
	})
	t.ConnectListDefinedStoragePools(func(c *Call, a *libvirt.ConnectListDefinedStoragePoolsArgs) (*libvirt.ConnectListDefinedStoragePoolsRet, error) {
		return &libvirt.ConnectListDefinedStoragePoolsRet{}, checkMaxList(a.Maxnames, "maxnames")
	})
	t.StoragePoolLookupByName(func(c *Call, a *libvirt.StoragePoolLookupByNameArgs) (*libvirt.StoragePoolLookupByNameRet, error) {
		return nil, compat.Errorf(libvirt.ErrNoStoragePool, compat.FromStorage, "no storage pool with matching name '%s'", a.Name)
	})
	t.StoragePoolLookupByUUID(func(c *Call, a *libvirt.StoragePoolLookupByUUIDArgs) (*libvirt.StoragePoolLookupByUUIDRet, error) {
		return nil, compat.Errorf(libvirt.ErrNoStoragePool, compat.FromStorage, "no storage pool with matching uuid '%s'", compat.FormatUUID(a.UUID))
	})
	t.StorageVolLookupByPath(func(c *Call, a *libvirt.StorageVolLookupByPathArgs) (*libvirt.StorageVolLookupByPathRet, error) {
		return nil, compat.Errorf(libvirt.ErrNoStorageVol, compat.FromStorage, "no storage vol with matching path '%s'", a.Path)
	})
}

// registerEmptyOtherHandlers: network filters, host interfaces, node devices.
func registerEmptyOtherHandlers(t *Table) {
	t.ConnectListAllNwfilters(func(c *Call, a *libvirt.ConnectListAllNwfiltersArgs) (*libvirt.ConnectListAllNwfiltersRet, error) {
		return &libvirt.ConnectListAllNwfiltersRet{}, nil
	})
	t.ConnectNumOfNwfilters(func(c *Call) (*libvirt.ConnectNumOfNwfiltersRet, error) {
		return &libvirt.ConnectNumOfNwfiltersRet{}, nil
	})
	t.ConnectListNwfilters(func(c *Call, a *libvirt.ConnectListNwfiltersArgs) (*libvirt.ConnectListNwfiltersRet, error) {
		return &libvirt.ConnectListNwfiltersRet{}, checkMaxList(a.Maxnames, "maxnames")
	})
	t.NwfilterLookupByName(func(c *Call, a *libvirt.NwfilterLookupByNameArgs) (*libvirt.NwfilterLookupByNameRet, error) {
		return nil, compat.Errorf(libvirt.ErrNoNwfilter, compat.FromNWFilter, "no nwfilter with matching name '%s'", a.Name)
	})
	t.NwfilterLookupByUUID(func(c *Call, a *libvirt.NwfilterLookupByUUIDArgs) (*libvirt.NwfilterLookupByUUIDRet, error) {
		return nil, compat.Errorf(libvirt.ErrNoNwfilter, compat.FromNWFilter, "no nwfilter with matching uuid '%s'", compat.FormatUUID(a.UUID))
	})
	t.ConnectListAllNwfilterBindings(func(c *Call, a *libvirt.ConnectListAllNwfilterBindingsArgs) (*libvirt.ConnectListAllNwfilterBindingsRet, error) {
		return &libvirt.ConnectListAllNwfilterBindingsRet{}, nil
	})

	t.ConnectListAllInterfaces(func(c *Call, a *libvirt.ConnectListAllInterfacesArgs) (*libvirt.ConnectListAllInterfacesRet, error) {
		return &libvirt.ConnectListAllInterfacesRet{}, nil
	})
	t.ConnectNumOfInterfaces(func(c *Call) (*libvirt.ConnectNumOfInterfacesRet, error) {
		return &libvirt.ConnectNumOfInterfacesRet{}, nil
	})
	t.ConnectListInterfaces(func(c *Call, a *libvirt.ConnectListInterfacesArgs) (*libvirt.ConnectListInterfacesRet, error) {
		return &libvirt.ConnectListInterfacesRet{}, checkMaxList(a.Maxnames, "maxnames")
	})
	t.ConnectListAllNodeDevices(func(c *Call, a *libvirt.ConnectListAllNodeDevicesArgs) (*libvirt.ConnectListAllNodeDevicesRet, error) {
		return &libvirt.ConnectListAllNodeDevicesRet{}, nil
	})
	t.NodeNumOfDevices(func(c *Call, a *libvirt.NodeNumOfDevicesArgs) (*libvirt.NodeNumOfDevicesRet, error) {
		return &libvirt.NodeNumOfDevicesRet{}, nil
	})
	t.NodeListDevices(func(c *Call, a *libvirt.NodeListDevicesArgs) (*libvirt.NodeListDevicesRet, error) {
		return &libvirt.NodeListDevicesRet{}, checkMaxList(a.Maxnames, "maxnames")
	})
}

func registerEmptySecretHandlers(t *Table) {
	t.ConnectListAllSecrets(func(c *Call, a *libvirt.ConnectListAllSecretsArgs) (*libvirt.ConnectListAllSecretsRet, error) {
		return &libvirt.ConnectListAllSecretsRet{}, nil
	})
}
