package qemucmd

import (
	"encoding/json"
	"fmt"

	"libvirt.org/go/libvirtxml"
)

// Hotplug is what QMP needs to plug one device into a running QEMU: the
// backends to create first (blockdev-add or netdev_add objects, in
// order) and the device_add object. They are the very objects Build puts
// on the command line for the same device, so a device plugged later has
// the node names, ids and properties it would have had from the start.
type Hotplug struct {
	Backends []json.RawMessage
	Device   json.RawMessage
}

// HotplugDisk builds the hotplug of dom's disk i; dom is the live
// definition with the disk in place, its alias and <source index> set.
func HotplugDisk(dom *libvirtxml.Domain, i int) (Hotplug, error) {
	b := hotplugBuilder(dom)
	if err := b.disk(&dom.Devices.Disks[i], DiskNodeIndex(dom, i), 0); err != nil {
		return Hotplug{}, err
	}
	return b.hotplug("-blockdev")
}

// HotplugNet builds the hotplug of dom's NIC i. A tap NIC's descriptor is
// tapFD, the name it was passed to QEMU under (getfd).
func HotplugNet(dom *libvirtxml.Domain, i int, tapFD string) (Hotplug, error) {
	n := &dom.Devices.Interfaces[i]
	if isTapNIC(n) && tapFD == "" {
		return Hotplug{}, fmt.Errorf("interface %s: no tap descriptor", alias(n.Alias))
	}
	b := hotplugBuilder(dom)
	if err := b.net(n, 0, tapFD); err != nil {
		return Hotplug{}, err
	}
	return b.hotplug("-netdev")
}

func hotplugBuilder(dom *libvirtxml.Domain) *builder {
	return &builder{dom: dom, cmd: &Command{}, q35: isQ35(dom)}
}

// hotplug collects the arguments the builder emitted for one device.
func (b *builder) hotplug(backendOpt string) (Hotplug, error) {
	var h Hotplug
	args := b.cmd.Args
	for i := 0; i+1 < len(args); i += 2 {
		switch args[i] {
		case backendOpt:
			h.Backends = append(h.Backends, json.RawMessage(args[i+1]))
		case "-device":
			if h.Device != nil {
				return Hotplug{}, fmt.Errorf("hotplug: more than one device")
			}
			h.Device = json.RawMessage(args[i+1])
		default:
			return Hotplug{}, unsupported("hotplug of a device that needs %s", args[i])
		}
	}
	if h.Device == nil {
		return Hotplug{}, fmt.Errorf("hotplug: no device built")
	}
	return h, nil
}

// DiskNodes lists the block node names of dom's disk i in the order
// blockdev-del must remove them: each image's format node before its
// storage node, the top image first.
func DiskNodes(dom *libvirtxml.Domain, i int) []string {
	disk := &dom.Devices.Disks[i]
	if disk.Source == nil || (disk.Source.File == nil || disk.Source.File.File == "") && (disk.Source.Block == nil || disk.Source.Block.Dev == "") {
		return nil
	}
	idx := DiskNodeIndex(dom, i)
	n := 1 + chainLength(disk)
	var names []string
	for k := 0; k < n; k++ {
		storage, format := blockNodeNames(idx + k)
		names = append(names, format, storage)
	}
	return names
}
