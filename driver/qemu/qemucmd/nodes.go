package qemucmd

import (
	"fmt"

	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/driver/qemu/domainxml"
)

// DiskNodeIndex is the block node index of the domain's disk i (its top
// image): libvirt numbers the nodes walking the disks from the last to the
// first, each disk's images from the top down, so disk i's top comes after
// every image of the disks behind it. It is also the index of the disk's
// source in libvirt's live XML (<source index='N'/>), and its backing
// images have the next ones.
//
// A live definition records the index in <source index='N'/>: a disk
// attached while the domain runs gets the next free index rather than
// one from its place in the list, and the indexes of the other disks do
// not move, so the recorded one wins (an external snapshot's new top
// image gets the next free index too).
func DiskNodeIndex(dom *libvirtxml.Domain, i int) int {
	if src := dom.Devices.Disks[i].Source; src != nil && src.Index > 0 {
		return int(src.Index)
	}
	idx := 1
	for j := len(dom.Devices.Disks) - 1; j > i; j-- {
		idx += 1 + chainLength(&dom.Devices.Disks[j])
	}
	return idx
}

// chainLength counts a disk's backing images (those with a source).
func chainLength(disk *libvirtxml.DomainDisk) int {
	n := 0
	for bs := disk.BackingStore; !domainxml.EmptyBackingStore(bs); bs = bs.BackingStore {
		n++
	}
	return n
}

// backingChain lists a disk's backing images from the top down, as the
// live definition records them (domainxml.PrepareLive probes them):
// image files with a known format.
func backingChain(disk *libvirtxml.DomainDisk, what string) ([]*libvirtxml.DomainDiskBackingStore, error) {
	var chain []*libvirtxml.DomainDiskBackingStore
	for bs := disk.BackingStore; !domainxml.EmptyBackingStore(bs); bs = bs.BackingStore {
		if bs.Source == nil || bs.Source.File == nil || bs.Source.File.File == "" {
			return nil, unsupported("%s: backing images other than files", what)
		}
		if bs.Format == nil || (bs.Format.Type != "raw" && bs.Format.Type != "qcow2") {
			return nil, unsupported("%s: backing image '%s' needs format raw or qcow2", what, bs.Source.File.File)
		}
		chain = append(chain, bs)
	}
	return chain, nil
}

// BlockNodeNames are the node names of the image with libvirt's node
// index (see blockNodeNames).
func BlockNodeNames(nodeIndex int) (storage, format string) { return blockNodeNames(nodeIndex) }

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
