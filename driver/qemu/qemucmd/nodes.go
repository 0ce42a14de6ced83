package qemucmd

import (
	"fmt"

	"libvirt.org/go/libvirtxml"
)

// blockNodeNames are the -blockdev node names of the disk with libvirt's
// node index: the protocol (storage) layer and the format layer on it.
func blockNodeNames(nodeIndex int) (storage, format string) {
	return fmt.Sprintf("libvirt-%d-storage", nodeIndex), fmt.Sprintf("libvirt-%d-format", nodeIndex)
}

// DiskFormatNode names the format layer of dom's i-th disk in QEMU, the
// node a guest's writes go through (and the one storage migration mirrors
// and exports). libvirt numbers the nodes from the last disk to the first.
func DiskFormatNode(dom *libvirtxml.Domain, i int) string {
	_, format := blockNodeNames(len(dom.Devices.Disks) - i)
	return format
}
