package driver

import (
	"context"

	libvirt "github.com/digitalocean/go-libvirt"
)

// NodeStat is one field of virNodeCPUStats or virNodeMemoryStats.
type NodeStat struct {
	Field string
	Value uint64
}

// NodeQueries answers the host statistics calls (virsh freecell,
// nodecpustats, nodememstats, nodecpumap, sysinfo).
type NodeQueries interface {
	// NodeGetFreeMemory is the host's free memory in bytes.
	NodeGetFreeMemory(ctx context.Context) (uint64, error)
	// NodeGetCellsFreeMemory is the free memory in bytes of up to
	// maxCells NUMA cells from startCell on.
	NodeGetCellsFreeMemory(ctx context.Context, startCell, maxCells int32) ([]uint64, error)
	// NodeGetCPUStats returns the CPU time fields of one CPU (-1: all);
	// with nparams 0 only their number.
	NodeGetCPUStats(ctx context.Context, cpu, nparams int32, flags uint32) ([]NodeStat, int32, error)
	// NodeGetMemoryStats returns the memory fields of one cell (-1: the
	// host); with nparams 0 only their number.
	NodeGetMemoryStats(ctx context.Context, cell, nparams int32, flags uint32) ([]NodeStat, int32, error)
	// NodeGetCPUMap returns the host's CPU count and, when asked, the
	// online CPU bitmap and how many are online.
	NodeGetCPUMap(ctx context.Context, needMap, needOnline bool, flags uint32) (cpumap []byte, online uint32, cpus int32, err error)
	// Sysinfo is the host's <sysinfo> document.
	Sysinfo(ctx context.Context, flags uint32) (string, error)
}

// MetadataArgs are virDomainSetMetadata's arguments; nil is C's NULL.
type MetadataArgs struct {
	Type     int32 // virDomainMetadataType
	Metadata *string
	Key      *string
	URI      *string
	Flags    uint32 // virDomainModificationImpact
}

// DomainEdits changes a domain's definition in place: its title,
// description and application metadata, its name, and (DomainDevices)
// its devices, memory and vCPUs.
type DomainEdits interface {
	SetMetadata(ctx context.Context, dom libvirt.Domain, a MetadataArgs) error
	GetMetadata(ctx context.Context, dom libvirt.Domain, typ int32, uri *string, flags uint32) (string, error)
	// Rename renames an inactive persistent domain, keeping its UUID.
	Rename(ctx context.Context, dom libvirt.Domain, newName *string, flags uint32) error
	DomainDevices
}
