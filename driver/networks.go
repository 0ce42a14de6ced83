package driver

import (
	"context"

	libvirt "github.com/digitalocean/go-libvirt"
)

// Networks is the virtual network driver, as libvirt's src/network:
// implemented by driver/network. Networks are named by go-libvirt's
// Network (name and UUID), as on the wire.
type Networks interface {
	ListAllNetworks(ctx context.Context, flags libvirt.ConnectListAllNetworksFlags) ([]libvirt.Network, error)
	// NetworkNames lists the names of the active (or inactive) networks,
	// for the old list and count procedures.
	NetworkNames(active bool) []string
	NetworkLookupByName(ctx context.Context, name string) (libvirt.Network, error)
	NetworkLookupByUUID(ctx context.Context, uuid libvirt.UUID) (libvirt.Network, error)

	NetworkDefineXML(ctx context.Context, xml string, flags uint32) (libvirt.Network, error)
	// NetworkCreateXML defines and starts a transient network.
	NetworkCreateXML(ctx context.Context, xml string, flags uint32) (libvirt.Network, error)
	NetworkCreate(ctx context.Context, n libvirt.Network) error
	NetworkDestroy(ctx context.Context, n libvirt.Network) error
	NetworkUndefine(ctx context.Context, n libvirt.Network) error

	NetworkGetXMLDesc(ctx context.Context, n libvirt.Network, flags libvirt.NetworkXMLFlags) (string, error)
	NetworkGetBridgeName(ctx context.Context, n libvirt.Network) (string, error)
	NetworkGetAutostart(ctx context.Context, n libvirt.Network) (bool, error)
	NetworkSetAutostart(ctx context.Context, n libvirt.Network, on bool) error
	NetworkIsActive(ctx context.Context, n libvirt.Network) (bool, error)
	NetworkIsPersistent(ctx context.Context, n libvirt.Network) (bool, error)
	// NetworkGetDHCPLeases returns the network's DHCP leases, only those
	// of the given MAC address when mac is not empty.
	NetworkGetDHCPLeases(ctx context.Context, n libvirt.Network, mac string) ([]libvirt.NetworkDhcpLease, error)

	// NetworkUpdate is virNetworkUpdate: command and section as libvirt
	// numbers them, the XML of one element.
	NetworkUpdate(ctx context.Context, n libvirt.Network, command libvirt.NetworkUpdateCommand, section libvirt.NetworkUpdateSection, parentIndex int32, xml string, flags libvirt.NetworkUpdateFlags) error

	// SetNetworkEventSink tells the driver where to deliver network
	// lifecycle events. The sink must not block.
	SetNetworkEventSink(func(NetworkEvent))
}

// NetworkEvent is a network lifecycle event
// (VIR_NETWORK_EVENT_ID_LIFECYCLE).
type NetworkEvent struct {
	Net           libvirt.Network
	Event, Detail int32
}
