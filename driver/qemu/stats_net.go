package qemu

import (
	"context"
	"net"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
)

// InterfaceStats implements driver.DomainStats as libvirt's
// qemuDomainInterfaceStats. The NIC is named by MAC address or host
// interface name (virDomainNetFind). Libvirt reads the counters of the
// NIC's host tap device; govirtd's NICs are all type 'user' (slirp inside
// QEMU), which have none, so a NIC that exists gets libvirt's answer for
// a NIC without a host interface name.
func (d *Driver) InterfaceStats(ctx context.Context, ref libvirt.Domain, device string) (libvirt.DomainInterfaceStatsRet, error) {
	dom, err := d.get(ref)
	if err != nil {
		return libvirt.DomainInterfaceStatsRet{}, err
	}
	if !dom.active() {
		return libvirt.DomainInterfaceStatsRet{}, errNotRunning()
	}
	nic := findNIC(dom.current(), device)
	if nic == nil {
		return libvirt.DomainInterfaceStatsRet{}, compat.Errorf(libvirt.ErrInvalidArg, compat.FromDomain, "'%s' is not a known interface", device)
	}
	if nic.Target != nil && nic.Target.Dev != "" {
		return tapStats(nic) // netif_stats.go
	}
	// virNetDevTapInterfaceStats with no ifname.
	return libvirt.DomainInterfaceStatsRet{}, compat.Errorf(libvirt.ErrInternalError, compat.FromNone, "Interface name not provided")
}

// findNIC is virDomainNetFind: by MAC address if device is one, else by
// host interface name (<target dev>; user NICs have none).
func findNIC(def *libvirtxml.Domain, device string) *libvirtxml.DomainInterface {
	if def == nil || def.Devices == nil {
		return nil
	}
	mac, macErr := net.ParseMAC(device)
	for i := range def.Devices.Interfaces {
		n := &def.Devices.Interfaces[i]
		if macErr == nil {
			if n.MAC != nil {
				if m, err := net.ParseMAC(n.MAC.Address); err == nil && m.String() == mac.String() {
					return n
				}
			}
			continue
		}
		if n.Target != nil && n.Target.Dev != "" && n.Target.Dev == device {
			return n
		}
	}
	return nil
}

// netGroup adds the VIR_DOMAIN_STATS_INTERFACE group of a running domain
// as libvirt's qemuDomainGetStatsInterface does: net.count, then name and
// counters only for NICs with a host interface. govirtd's user NICs have
// none, so, as with libvirt, net.count is all there is.
func netGroup(def *libvirtxml.Domain, add func(string, *libvirt.TypedParamValue)) {
	n := 0
	if def != nil && def.Devices != nil {
		n = len(def.Devices.Interfaces)
	}
	add("net.count", libvirt.NewTypedParamValueUint(uint32(n)))
	for i := 0; i < n; i++ {
		tapStatsParams(i, &def.Devices.Interfaces[i], add) // netif_stats.go
	}
}
