package qemu

import (
	"context"
	"sync"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver"
	"github.com/govirtd/govirtd/driver/hostinfo"
)

// hostFS is where the node calls read /proc and /sys.
var hostFS = hostinfo.Host

func stats(in []hostinfo.Stat) []driver.NodeStat {
	out := make([]driver.NodeStat, len(in))
	for i, s := range in {
		out[i] = driver.NodeStat{Field: s.Field, Value: s.Value}
	}
	return out
}

// NodeGetFreeMemory implements driver.NodeQueries (qemuNodeGetFreeMemory).
func (d *Driver) NodeGetFreeMemory(ctx context.Context) (uint64, error) {
	return hostFS.FreeMemory()
}

// NodeGetCellsFreeMemory implements driver.NodeQueries, with the argument
// checks of virNodeGetCellsFreeMemory.
func (d *Driver) NodeGetCellsFreeMemory(ctx context.Context, startCell, maxCells int32) ([]uint64, error) {
	if startCell < 0 {
		return nil, compat.Errorf(libvirt.ErrInvalidArg, compat.FromNone, "startCell in virNodeGetCellsFreeMemory must be zero or greater")
	}
	if maxCells <= 0 {
		return nil, compat.Errorf(libvirt.ErrInvalidArg, compat.FromNone, "maxCells in virNodeGetCellsFreeMemory must be greater than zero")
	}
	return hostFS.CellsFreeMemory(int(startCell), int(maxCells))
}

// NodeGetCPUStats implements driver.NodeQueries (virHostCPUGetStats).
func (d *Driver) NodeGetCPUStats(ctx context.Context, cpu, nparams int32, flags uint32) ([]driver.NodeStat, int32, error) {
	if nparams < 0 {
		return nil, 0, compat.Errorf(libvirt.ErrInvalidArg, compat.FromNone, "nparams in virNodeGetCPUStats must be zero or greater")
	}
	if cpu < 0 && cpu != hostinfo.AllCPUs {
		return nil, 0, compat.Errorf(libvirt.ErrInvalidArg, compat.FromNone, "cpuNum in virNodeGetCPUStats only accepts %d as a negative value", hostinfo.AllCPUs)
	}
	if flags != 0 {
		return nil, 0, errUnsupportedFlagsIn(flags, "virHostCPUGetStats")
	}
	s, n, err := hostFS.CPUStats(int(cpu), int(nparams))
	return stats(s), int32(n), err
}

// NodeGetMemoryStats implements driver.NodeQueries (virHostMemGetStats).
func (d *Driver) NodeGetMemoryStats(ctx context.Context, cell, nparams int32, flags uint32) ([]driver.NodeStat, int32, error) {
	if nparams < 0 {
		return nil, 0, compat.Errorf(libvirt.ErrInvalidArg, compat.FromNone, "nparams in virNodeGetMemoryStats must be zero or greater")
	}
	if cell < 0 && cell != hostinfo.AllCells {
		return nil, 0, compat.Errorf(libvirt.ErrInvalidArg, compat.FromNone, "cellNum in virNodeGetMemoryStats only accepts %d as a negative value", hostinfo.AllCells)
	}
	if flags != 0 {
		return nil, 0, errUnsupportedFlagsIn(flags, "virHostMemGetStats")
	}
	s, n, err := hostFS.MemoryStats(int(cell), int(nparams))
	return stats(s), int32(n), err
}

// NodeGetCPUMap implements driver.NodeQueries (virHostCPUGetMap).
func (d *Driver) NodeGetCPUMap(ctx context.Context, needMap, needOnline bool, flags uint32) ([]byte, uint32, int32, error) {
	if flags != 0 {
		return nil, 0, 0, errUnsupportedFlagsIn(flags, "virHostCPUGetMap")
	}
	present, online, err := hostFS.CPUMap()
	if err != nil {
		return nil, 0, 0, err
	}
	var cpumap []byte
	if needMap {
		cpumap = hostinfo.CPUMapBytes(present, online)
	}
	var n uint32
	if needOnline {
		n = uint32(len(online))
	}
	return cpumap, n, int32(present), nil
}

// sysinfo is read once, as libvirt's QEMU driver reads it at startup.
var sysinfo struct {
	once sync.Once
	xml  string
	err  error
}

// Sysinfo implements driver.NodeQueries (qemuConnectGetSysinfo).
func (d *Driver) Sysinfo(ctx context.Context, flags uint32) (string, error) {
	if flags != 0 {
		return "", errUnsupportedFlagsIn(flags, "qemuConnectGetSysinfo")
	}
	sysinfo.once.Do(func() {
		s, err := hostFS.ReadSMBIOS()
		if err != nil {
			d.log.Info("no host sysinfo", "err", err)
			sysinfo.err = compat.Errorf(libvirt.ErrConfigUnsupported, compat.FromQEMU, "Host SMBIOS information is not available")
			return
		}
		sysinfo.xml = s.Format()
	})
	return sysinfo.xml, sysinfo.err
}

// errUnsupportedFlagsIn is virCheckFlags' error, naming the function.
func errUnsupportedFlagsIn(flags uint32, fn string) error {
	return compat.Errorf(libvirt.ErrInvalidArg, compat.FromQEMU, "unsupported flags (0x%x) in function %s", flags, fn)
}
