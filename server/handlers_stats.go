package server

import (
	"log/slog"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver"
)

// Limits of remote_protocol.x the statistics calls check, as libvirt's
// remote dispatchers do.
const (
	blockStatsParamsMax = 16      // REMOTE_DOMAIN_BLOCK_STATS_PARAMETERS_MAX
	memoryStatsMax      = 1024    // REMOTE_DOMAIN_MEMORY_STATS_MAX
	vcpuInfoMax         = 16384   // REMOTE_VCPUINFO_MAX
	cpumapsMax          = 8388608 // REMOTE_CPUMAPS_MAX
)

// registerStatsHandlers binds the per-domain statistics and vCPU calls.
func registerStatsHandlers(t *Table, s *Server) {
	drv := s.drv
	t.DomainBlockStats(func(c *Call, a *libvirt.DomainBlockStatsArgs) (*libvirt.DomainBlockStatsRet, error) {
		st, err := drv.BlockStats(c.Ctx, a.Dom, a.Path)
		// QEMU counts no errors: libvirt reports -1 for "unknown".
		return &libvirt.DomainBlockStatsRet{RdReq: st.RdReq, RdBytes: st.RdBytes, WrReq: st.WrReq, WrBytes: st.WrBytes, Errs: -1}, err
	})
	t.DomainBlockStatsFlags(func(c *Call, a *libvirt.DomainBlockStatsFlagsArgs) (*libvirt.DomainBlockStatsFlagsRet, error) {
		if a.Nparams > blockStatsParamsMax {
			return nil, compat.Errorf(libvirt.ErrInternalError, compat.FromRPC, "nparams too large")
		}
		if a.Flags&^uint32(libvirt.TypedParamStringOkay) != 0 {
			return nil, compat.Errorf(libvirt.ErrInvalidArg, compat.FromQEMU, "unsupported flags (0x%x) in function qemuDomainBlockStatsFlags", a.Flags&^uint32(libvirt.TypedParamStringOkay))
		}
		st, err := drv.BlockStats(c.Ctx, a.Dom, a.Path)
		if err != nil {
			return nil, err
		}
		ps := blockStatsParams(st)
		// Asked for none: how many there are.
		if a.Nparams == 0 {
			return &libvirt.DomainBlockStatsFlagsRet{Nparams: int32(len(ps))}, nil
		}
		if int(a.Nparams) < len(ps) {
			ps = ps[:a.Nparams]
		}
		return &libvirt.DomainBlockStatsFlagsRet{Params: ps}, nil
	})
	t.DomainInterfaceStats(func(c *Call, a *libvirt.DomainInterfaceStatsArgs) (*libvirt.DomainInterfaceStatsRet, error) {
		st, err := drv.InterfaceStats(c.Ctx, a.Dom, a.Device)
		return &st, err
	})
	t.DomainMemoryStats(func(c *Call, a *libvirt.DomainMemoryStatsArgs) (*libvirt.DomainMemoryStatsRet, error) {
		if a.MaxStats > memoryStatsMax {
			return nil, compat.Errorf(libvirt.ErrInternalError, compat.FromRPC, "maxStats > REMOTE_DOMAIN_MEMORY_STATS_MAX")
		}
		st, err := drv.MemoryStats(c.Ctx, a.Dom, a.MaxStats, a.Flags)
		return &libvirt.DomainMemoryStatsRet{Stats: st}, err
	})
	t.DomainSetMemoryStatsPeriod(func(c *Call, a *libvirt.DomainSetMemoryStatsPeriodArgs) error {
		return drv.SetMemoryStatsPeriod(c.Ctx, a.Dom, a.Period, uint32(a.Flags))
	})
	t.DomainGetVcpus(func(c *Call, a *libvirt.DomainGetVcpusArgs) (*libvirt.DomainGetVcpusRet, error) {
		if a.Maxinfo > vcpuInfoMax {
			return nil, compat.Errorf(libvirt.ErrInternalError, compat.FromRPC, "maxinfo > REMOTE_VCPUINFO_MAX")
		}
		if int64(a.Maxinfo)*int64(a.Maplen) > cpumapsMax {
			return nil, compat.Errorf(libvirt.ErrInternalError, compat.FromRPC, "maxinfo * maplen > REMOTE_CPUMAPS_MAX")
		}
		if a.Maxinfo <= 0 {
			return nil, compat.Errorf(libvirt.ErrInvalidArg, compat.FromDomain, "maxinfo in virDomainGetVcpus must be greater than zero")
		}
		if a.Maplen < 0 {
			return nil, compat.Errorf(libvirt.ErrInvalidArg, compat.FromDomain, "maplen in virDomainGetVcpus must be greater than zero")
		}
		vcpus, err := drv.GetVcpus(c.Ctx, a.Dom, int(a.Maxinfo))
		if err != nil {
			return nil, err
		}
		ret := &libvirt.DomainGetVcpusRet{Cpumaps: make([]byte, int(a.Maxinfo)*int(a.Maplen))}
		for i, v := range vcpus {
			ret.Info = append(ret.Info, v.Info)
			putCPUMap(ret.Cpumaps[i*int(a.Maplen):(i+1)*int(a.Maplen)], v.Affinity)
		}
		return ret, nil
	})
	t.DomainGetVcpuPinInfo(func(c *Call, a *libvirt.DomainGetVcpuPinInfoArgs) (*libvirt.DomainGetVcpuPinInfoRet, error) {
		if a.Ncpumaps > vcpuInfoMax {
			return nil, compat.Errorf(libvirt.ErrInternalError, compat.FromRPC, "ncpumaps > REMOTE_VCPUINFO_MAX")
		}
		if int64(a.Ncpumaps)*int64(a.Maplen) > cpumapsMax {
			return nil, compat.Errorf(libvirt.ErrInternalError, compat.FromRPC, "maxinfo * maplen > REMOTE_CPUMAPS_MAX")
		}
		if a.Ncpumaps <= 0 || a.Maplen <= 0 {
			return nil, compat.Errorf(libvirt.ErrInvalidArg, compat.FromDomain, "ncpumaps and maplen in virDomainGetVcpuPinInfo must be greater than zero")
		}
		pins, err := drv.GetVcpuPinInfo(c.Ctx, a.Dom, int(a.Ncpumaps), a.Flags)
		if err != nil {
			return nil, err
		}
		ret := &libvirt.DomainGetVcpuPinInfoRet{Cpumaps: make([]byte, int(a.Ncpumaps)*int(a.Maplen)), Num: int32(len(pins))}
		for i, set := range pins {
			putCPUMap(ret.Cpumaps[i*int(a.Maplen):(i+1)*int(a.Maplen)], set)
		}
		return ret, nil
	})
	t.DomainPinVcpu(func(c *Call, a *libvirt.DomainPinVcpuArgs) error {
		return drv.PinVcpu(c.Ctx, a.Dom, a.Vcpu, cpuMapCPUs(a.Cpumap), uint32(libvirt.DomainAffectLive))
	})
	t.DomainPinVcpuFlags(func(c *Call, a *libvirt.DomainPinVcpuFlagsArgs) error {
		return drv.PinVcpu(c.Ctx, a.Dom, a.Vcpu, cpuMapCPUs(a.Cpumap), a.Flags)
	})
}

// blockStatsParams are a disk's counters as libvirt's
// qemuDomainBlockStatsFlags lists them (VIR_DOMAIN_BLOCK_STATS_* names,
// in its order; QEMU has no error count, so "errs" is absent).
func blockStatsParams(st driver.BlockStats) []libvirt.TypedParam {
	ll := func(field string, v int64) libvirt.TypedParam {
		return libvirt.TypedParam{Field: field, Value: *libvirt.NewTypedParamValueLlong(v)}
	}
	return []libvirt.TypedParam{
		ll("wr_bytes", st.WrBytes),
		ll("wr_operations", st.WrReq),
		ll("rd_bytes", st.RdBytes),
		ll("rd_operations", st.RdReq),
		ll("flush_operations", st.FlushReq),
		ll("wr_total_times", st.WrTotalTimes),
		ll("rd_total_times", st.RdTotalTimes),
		ll("flush_total_times", st.FlushTotalTimes),
	}
}

// putCPUMap sets the bits of cpus in a libvirt cpumap (VIR_USE_CPU: CPU n
// is bit n%8 of byte n/8); CPUs past the map are left out.
func putCPUMap(m []byte, cpus []int) {
	for _, cpu := range cpus {
		if cpu >= 0 && cpu/8 < len(m) {
			m[cpu/8] |= 1 << (cpu % 8)
		}
	}
}

// cpuMapCPUs lists the CPUs set in a cpumap.
func cpuMapCPUs(m []byte) []int {
	var out []int
	for i, b := range m {
		for bit := 0; bit < 8; bit++ {
			if b&(1<<bit) != 0 {
				out = append(out, i*8+bit)
			}
		}
	}
	return out
}

// registerQEMUHandlers binds the QEMU program's procedures.
func registerQEMUHandlers(q QEMUTable, s *Server) {
	q.DomainMonitorCommand(func(c *Call, a *libvirt.QEMUDomainMonitorCommandArgs) (*libvirt.QEMUDomainMonitorCommandRet, error) {
		out, err := s.drv.QEMUMonitorCommand(c.Ctx, a.Dom, a.Cmd, a.Flags)
		if err != nil {
			return nil, err
		}
		c.Conn.log.Debug("qemu monitor command", slog.String("domain", a.Dom.Name), slog.String("cmd", a.Cmd))
		return &libvirt.QEMUDomainMonitorCommandRet{Result: out}, nil
	})
}
