package qemucmd

import (
	"fmt"

	"libvirt.org/go/libvirtxml"
)

// diskNodeIndex is the block node index of disk i of n: libvirt numbers
// the nodes walking the disks from the last to the first, one index per
// disk (govirtd has no backing chains). It is also the disk source's
// index in libvirt's live XML (<source index='N'/>).
func diskNodeIndex(n, i int) int { return n - i }

// DiskNodeIndex is the block node index of the domain's disk i.
func DiskNodeIndex(dom *libvirtxml.Domain, i int) int {
	return diskNodeIndex(len(dom.Devices.Disks), i)
}

// blockNodeNames are the -blockdev node names of the disk with libvirt's
// node index: the protocol (storage) layer and the format layer on it.
func blockNodeNames(nodeIndex int) (storage, format string) {
	return fmt.Sprintf("libvirt-%d-storage", nodeIndex), fmt.Sprintf("libvirt-%d-format", nodeIndex)
}

// DiskFormatNode names the format layer of dom's i-th disk in QEMU: the
// root of its block backend, the node a guest's writes go through (and
// the one storage migration mirrors and exports).
func DiskFormatNode(dom *libvirtxml.Domain, i int) string {
	_, format := blockNodeNames(DiskNodeIndex(dom, i))
	return format
}
