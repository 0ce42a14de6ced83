package server

import (
	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver"
)

// Limits of remote_protocol.x the daemon checks before the driver runs.
const (
	remoteNodeMaxCells       = 1024 // REMOTE_NODE_MAX_CELLS
	remoteNodeCPUStatsMax    = 16   // REMOTE_NODE_CPU_STATS_MAX
	remoteNodeMemoryStatsMax = 16   // REMOTE_NODE_MEMORY_STATS_MAX
)

// registerNodeHandlers binds the host statistics calls and the calls that
// edit a domain's definition in place (metadata, rename).
func registerNodeHandlers(t *Table, s *Server) {
	drv := s.drv
	t.NodeGetFreeMemory(func(c *Call) (*libvirt.NodeGetFreeMemoryRet, error) {
		m, err := drv.NodeGetFreeMemory(c.Ctx)
		return &libvirt.NodeGetFreeMemoryRet{FreeMem: m}, err
	})
	t.NodeGetCellsFreeMemory(func(c *Call, a *libvirt.NodeGetCellsFreeMemoryArgs) (*libvirt.NodeGetCellsFreeMemoryRet, error) {
		if a.Maxcells > remoteNodeMaxCells {
			return nil, compat.Errorf(libvirt.ErrRPC, compat.FromRPC, "maxCells > REMOTE_NODE_MAX_CELLS")
		}
		cells, err := drv.NodeGetCellsFreeMemory(c.Ctx, a.StartCell, a.Maxcells)
		return &libvirt.NodeGetCellsFreeMemoryRet{Cells: cells}, err
	})
	// With nparams 0 the client asks how many fields there are: the reply
	// carries the count and no fields (remoteDispatchNodeGetCPUStats).
	t.NodeGetCPUStats(func(c *Call, a *libvirt.NodeGetCPUStatsArgs) (*libvirt.NodeGetCPUStatsRet, error) {
		if a.Nparams > remoteNodeCPUStatsMax {
			return nil, compat.Errorf(libvirt.ErrRPC, compat.FromRPC, "nparams too large")
		}
		params, n, err := drv.NodeGetCPUStats(c.Ctx, a.CPUNum, a.Nparams, a.Flags)
		if err != nil {
			return nil, err
		}
		ret := &libvirt.NodeGetCPUStatsRet{}
		if a.Nparams == 0 {
			ret.Nparams = n
			return ret, nil
		}
		for _, p := range params {
			ret.Params = append(ret.Params, libvirt.NodeGetCPUStats{Field: p.Field, Value: p.Value})
		}
		return ret, nil
	})
	t.NodeGetMemoryStats(func(c *Call, a *libvirt.NodeGetMemoryStatsArgs) (*libvirt.NodeGetMemoryStatsRet, error) {
		if a.Nparams > remoteNodeMemoryStatsMax {
			return nil, compat.Errorf(libvirt.ErrRPC, compat.FromRPC, "nparams too large")
		}
		params, n, err := drv.NodeGetMemoryStats(c.Ctx, a.CellNum, a.Nparams, a.Flags)
		if err != nil {
			return nil, err
		}
		ret := &libvirt.NodeGetMemoryStatsRet{}
		if a.Nparams == 0 {
			ret.Nparams = n
			return ret, nil
		}
		for _, p := range params {
			ret.Params = append(ret.Params, libvirt.NodeGetMemoryStats{Field: p.Field, Value: p.Value})
		}
		return ret, nil
	})
	t.NodeGetCPUMap(func(c *Call, a *libvirt.NodeGetCPUMapArgs) (*libvirt.NodeGetCPUMapRet, error) {
		cpumap, online, n, err := drv.NodeGetCPUMap(c.Ctx, a.NeedMap != 0, a.NeedOnline != 0, a.Flags)
		return &libvirt.NodeGetCPUMapRet{Cpumap: cpumap, Online: online, Ret: n}, err
	})
	t.ConnectGetSysinfo(func(c *Call, a *libvirt.ConnectGetSysinfoArgs) (*libvirt.ConnectGetSysinfoRet, error) {
		x, err := drv.Sysinfo(c.Ctx, a.Flags)
		return &libvirt.ConnectGetSysinfoRet{Sysinfo: x}, err
	})

	t.DomainSetMetadata(func(c *Call, a *libvirt.DomainSetMetadataArgs) error {
		return drv.SetMetadata(c.Ctx, a.Dom, driver.MetadataArgs{
			Type: a.Type, Metadata: optPtr(a.Metadata), Key: optPtr(a.Key), URI: optPtr(a.Uri), Flags: uint32(a.Flags),
		})
	})
	t.DomainGetMetadata(func(c *Call, a *libvirt.DomainGetMetadataArgs) (*libvirt.DomainGetMetadataRet, error) {
		x, err := drv.GetMetadata(c.Ctx, a.Dom, a.Type, optPtr(a.Uri), uint32(a.Flags))
		return &libvirt.DomainGetMetadataRet{Metadata: x}, err
	})
	t.DomainRename(func(c *Call, a *libvirt.DomainRenameArgs) (*libvirt.DomainRenameRet, error) {
		return &libvirt.DomainRenameRet{}, drv.Rename(c.Ctx, a.Dom, optPtr(a.NewName), a.Flags)
	})
}

// optPtr unwraps an optional string; absent is nil (C's NULL).
func optPtr(o libvirt.OptString) *string {
	if len(o) == 1 {
		return &o[0]
	}
	return nil
}
