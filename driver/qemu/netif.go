package qemu

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"

	libvirt "github.com/digitalocean/go-libvirt"
	"golang.org/x/sys/unix"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver/qemu/qemucmd"
)

// NetworkBridges is what the QEMU driver asks the network driver
// (driver/network): the bridge a NIC of <interface type='network'> plugs
// into. The network must be active.
type NetworkBridges interface {
	Bridge(network string) (string, error)
}

// taps are the tap devices opened for one QEMU start, by NIC alias. The
// daemon's descriptors are closed once QEMU has its own: the taps are not
// persistent, so the kernel removes them when QEMU exits, as with
// libvirt.
type taps map[string]*os.File

func (t taps) close() {
	for _, f := range t {
		f.Close()
	}
}

// place puts each tap at the descriptor number the command line names.
func (t taps) place(cmd *qemucmd.Command, fixed map[int]*os.File) error {
	for _, p := range cmd.Taps {
		f, ok := t[p.Alias]
		if !ok {
			return fmt.Errorf("no tap device opened for interface %s", p.Alias)
		}
		fixed[p.FD] = f
	}
	return nil
}

// openTaps creates the host side of the live definition's NICs of type
// network, bridge and ethernet (qemuInterfaceBridgeConnect,
// qemuInterfaceEthernetConnect): a tap device named by <target dev> or
// the next free vnetN, with the guest's MAC address with its first byte
// 0xFE (so that the bridge never takes the guest's address), plugged into
// the bridge and up. The live definition gets <target dev> and, for
// network NICs, the bridge in <source>, as libvirt shows them.
func (d *Driver) openTaps(ctx context.Context, live *libvirtxml.Domain) (t taps, err error) {
	t = taps{}
	defer func() {
		if err != nil {
			t.close()
		}
	}()
	if live.Devices == nil {
		return t, nil
	}
	for i := range live.Devices.Interfaces {
		n := &live.Devices.Interfaces[i]
		if n.Source == nil || (n.Source.Network == nil && n.Source.Bridge == nil && n.Source.Ethernet == nil) {
			continue
		}
		bridge := ""
		switch {
		case n.Source.Network != nil:
			if d.opts.Networks == nil {
				return nil, compat.Errorf(libvirt.ErrNoSupport, compat.FromNone, "network driver is not available")
			}
			if bridge, err = d.opts.Networks.Bridge(n.Source.Network.Network); err != nil {
				return nil, err
			}
		case n.Source.Bridge != nil:
			bridge = n.Source.Bridge.Bridge
		}
		name := "vnet%d"
		// libvirt reserves the vnet prefix for the names it generates.
		if n.Target != nil && n.Target.Dev != "" && !strings.HasPrefix(n.Target.Dev, "vnet") {
			name = n.Target.Dev
		}
		virtio := n.Model != nil && n.Model.Type == "virtio"
		f, dev, err := createTap(name, virtio)
		if err != nil {
			return nil, compat.Errorf(libvirt.ErrSystemError, compat.FromNone, "Unable to create tap device %s: %v", name, err)
		}
		t[n.Alias.Name] = f
		if err := plugTap(ctx, dev, n.MAC.Address, bridge); err != nil {
			return nil, err
		}
		n.Target = &libvirtxml.DomainInterfaceTarget{Dev: dev}
		if n.Source.Network != nil {
			n.Source.Network.Bridge = bridge
		}
	}
	return t, nil
}

// createTap opens /dev/net/tun as a tap device called name (the kernel
// fills in a "%d"); an existing persistent tap of that name is attached.
func createTap(name string, vnetHdr bool) (*os.File, string, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, "", fmt.Errorf("open /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, "", err
	}
	flags := uint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if vnetHdr {
		flags |= unix.IFF_VNET_HDR
	}
	ifr.SetUint16(flags)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, "", fmt.Errorf("TUNSETIFF: %w", err)
	}
	dev := ifr.Name()
	return os.NewFile(uintptr(fd), "/dev/net/tun:"+dev), dev, nil
}

// plugTap sets the tap's MAC address, attaches it to the bridge (if any)
// and brings it up.
func plugTap(ctx context.Context, dev, guestMAC, bridge string) error {
	mac, err := net.ParseMAC(guestMAC)
	if err != nil {
		return compat.Errorf(libvirt.ErrInternalError, compat.FromNone, "invalid MAC address '%s'", guestMAC)
	}
	mac[0] = 0xfe
	steps := [][]string{{"link", "set", "dev", dev, "address", mac.String()}}
	if bridge != "" {
		steps = append(steps, []string{"link", "set", "dev", dev, "master", bridge})
	}
	steps = append(steps, []string{"link", "set", "dev", dev, "up"})
	for _, s := range steps {
		cmd := exec.CommandContext(ctx, "ip", s...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			if bridge != "" && s[4] == "master" {
				return compat.Errorf(libvirt.ErrSystemError, compat.FromNone, "Unable to add bridge %s port %s: %s", bridge, dev, strings.TrimSpace(stderr.String()))
			}
			return compat.Errorf(libvirt.ErrSystemError, compat.FromNone, "ip %s: %s", strings.Join(s, " "), strings.TrimSpace(stderr.String()))
		}
	}
	return nil
}
