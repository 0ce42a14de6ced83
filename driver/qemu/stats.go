package qemu

import (
	"context"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver/qemu/process"
)

// Stats groups (virDomainStatsTypes) govirtd fills.
const (
	statsState     = uint32(libvirt.DomainStatsState)
	statsCPU       = uint32(libvirt.DomainStatsCPUTotal)
	statsBalloon   = uint32(libvirt.DomainStatsBalloon)
	statsVCPU      = uint32(libvirt.DomainStatsVCPU)
	statsInterface = uint32(libvirt.DomainStatsInterface)
	statsBlock     = uint32(libvirt.DomainStatsBlock)
	statsPerf      = uint32(libvirt.DomainStatsPerf)
	supportedStats = statsState | statsCPU | statsBalloon | statsVCPU | statsInterface | statsBlock | statsPerf
)

// GetAllDomainStats implements driver.Domains for the groups state,
// cpu-total, balloon, vcpu, interface, block and perf. Like libvirt, unsupported groups are skipped
// unless the caller insists (VIR_CONNECT_GET_ALL_DOMAINS_STATS_ENFORCE_STATS).
func (d *Driver) GetAllDomainStats(ctx context.Context, refs []libvirt.Domain, stats, flags uint32) ([]libvirt.DomainStatsRecord, error) {
	enforce := flags&uint32(libvirt.ConnectGetAllDomainsStatsEnforceStats) != 0
	if stats == 0 {
		stats = supportedStats
	} else if enforce && stats&^supportedStats != 0 {
		return nil, compat.Errorf(libvirt.ErrArgumentUnsupported, compat.FromQEMU, "Stats types bits 0x%x are not supported by this daemon", stats&^supportedStats)
	}
	var doms []*domain
	if len(refs) > 0 {
		for _, r := range refs {
			dom, err := d.get(r)
			if err != nil {
				return nil, err
			}
			doms = append(doms, dom)
		}
	} else {
		// The list filters are the same bits as CONNECT_LIST_ALL_DOMAINS'.
		listFlags := libvirt.ConnectListAllDomainsFlags(flags & 0xff)
		for _, dom := range d.all() {
			if matchesListFlags(dom, listFlags, d.snaps) {
				doms = append(doms, dom)
			}
		}
	}
	out := make([]libvirt.DomainStatsRecord, 0, len(doms))
	for _, dom := range doms {
		out = append(out, d.statsRecord(ctx, dom, stats))
	}
	return out, nil
}

func (d *Driver) statsRecord(ctx context.Context, dom *domain, stats uint32) libvirt.DomainStatsRecord {
	dom.mu.Lock()
	ref := libvirt.Domain{Name: dom.name, UUID: dom.uuid, ID: dom.id}
	state, reason := dom.state, dom.reason
	def := dom.live
	if def == nil {
		def = dom.def
	}
	pid := 0
	if dom.proc != nil {
		pid = dom.proc.PID()
	}
	mon := dom.mon
	dom.mu.Unlock()

	var ps []libvirt.TypedParam
	add := func(field string, v *libvirt.TypedParamValue) {
		ps = append(ps, libvirt.TypedParam{Field: field, Value: *v})
	}
	if stats&statsState != 0 {
		add("state.state", libvirt.NewTypedParamValueInt(int32(state)))
		add("state.reason", libvirt.NewTypedParamValueInt(reason))
	}
	if stats&statsCPU != 0 && pid != 0 {
		user, system := process.CPUTimes(pid)
		add("cpu.time", libvirt.NewTypedParamValueUllong(user+system))
		add("cpu.user", libvirt.NewTypedParamValueUllong(user))
		add("cpu.system", libvirt.NewTypedParamValueUllong(system))
	}
	if stats&statsBalloon != 0 && def != nil {
		var maxKiB, curKiB uint64
		if def.Memory != nil {
			maxKiB = toKiB(def.Memory.Value, def.Memory.Unit)
		}
		curKiB = maxKiB
		if def.CurrentMemory != nil {
			curKiB = toKiB(def.CurrentMemory.Value, def.CurrentMemory.Unit)
		}
		add("balloon.current", libvirt.NewTypedParamValueUllong(curKiB))
		add("balloon.maximum", libvirt.NewTypedParamValueUllong(maxKiB))
	}
	if stats&statsVCPU != 0 && def != nil && def.VCPU != nil {
		n := def.VCPU.Value
		cur := n
		if def.VCPU.Current != 0 {
			cur = def.VCPU.Current
		}
		add("vcpu.current", libvirt.NewTypedParamValueUint(uint32(cur)))
		add("vcpu.maximum", libvirt.NewTypedParamValueUint(uint32(n)))
	}
	if stats&statsInterface != 0 && mon != nil {
		netGroup(def, add)
	}
	if stats&statsBlock != 0 {
		d.blockGroup(ctx, def, mon, add)
	}
	// statsPerf: libvirt reports perf.* only for the perf events enabled
	// on the domain (<perf>), which govirtd has none of: the group is
	// empty, as libvirt's is for a domain without them.
	return libvirt.DomainStatsRecord{Dom: ref, Params: ps}
}
