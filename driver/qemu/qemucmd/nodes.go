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

// DiskFormatNode is the node name of disk i's format layer, the root of
// its block backend.
func DiskFormatNode(dom *libvirtxml.Domain, i int) string {
	return fmt.Sprintf("libvirt-%d-format", DiskNodeIndex(dom, i))
}
