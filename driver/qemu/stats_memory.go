package qemu

import (
	"context"
	"errors"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver/qemu/process"
	"github.com/govirtd/govirtd/driver/qemu/qmp"
)

// balloonPath is the QOM path of a domain's virtio balloon ("" without
// one): its alias under /machine/peripheral, where libvirt's
// qemuMonitorFindBalloonObjectPath finds it.
func balloonPath(def *libvirtxml.Domain) string {
	if def == nil || def.Devices == nil {
		return ""
	}
	mb := def.Devices.MemBalloon
	if mb == nil || mb.Model != "virtio" {
		return ""
	}
	alias := "balloon0"
	if mb.Alias != nil && mb.Alias.Name != "" {
		alias = mb.Alias.Name
	}
	return "/machine/peripheral/" + alias
}

// balloonPeriod is the <memballoon><stats period> of a definition.
func balloonPeriod(def *libvirtxml.Domain) int {
	if def == nil || def.Devices == nil || def.Devices.MemBalloon == nil || def.Devices.MemBalloon.Stats == nil {
		return 0
	}
	return int(def.Devices.MemBalloon.Stats.Period)
}

// setupBalloon starts the balloon's statistics polling at the period the
// definition asks for, as qemuProcessSetupBalloon does.
func setupBalloon(ctx context.Context, mon *qmp.Monitor, def *libvirtxml.Domain) error {
	path, period := balloonPath(def), balloonPeriod(def)
	if path == "" || period == 0 {
		return nil
	}
	return mon.SetBalloonStatsPeriod(ctx, path, period)
}

// guestStatTags maps the balloon's guest statistics to libvirt's tags, in
// the order qemuMonitorJSONGetMemoryStats reports them, with the divisor
// that turns bytes into KiB. "last-update" is not in "stats" but beside it.
var guestStatTags = []struct {
	name    string
	tag     libvirt.DomainMemoryStatTags
	divisor uint64
}{
	{"stat-swap-in", libvirt.DomainMemoryStatSwapIn, 1024},
	{"stat-swap-out", libvirt.DomainMemoryStatSwapOut, 1024},
	{"stat-major-faults", libvirt.DomainMemoryStatMajorFault, 1},
	{"stat-minor-faults", libvirt.DomainMemoryStatMinorFault, 1},
	{"stat-free-memory", libvirt.DomainMemoryStatUnused, 1024},
	{"stat-total-memory", libvirt.DomainMemoryStatAvailable, 1024},
	{"stat-available-memory", libvirt.DomainMemoryStatUsable, 1024},
	{"last-update", libvirt.DomainMemoryStatLastUpdate, 1},
	{"stat-disk-caches", libvirt.DomainMemoryStatDiskCaches, 1024},
	{"stat-htlb-pgalloc", libvirt.DomainMemoryStatHugetlbPgalloc, 1},
	{"stat-htlb-pgfail", libvirt.DomainMemoryStatHugetlbPgfail, 1},
}

// memoryStatsFrom turns the balloon's answers into libvirt's list: actual
// (the balloon size, KiB), the guest's statistics it has reported (QEMU
// gives the others as 2^64-1), last_update, then rss if known.
func memoryStatsFrom(actual int64, haveActual bool, gs *qmp.GuestStats, rss uint64, haveRSS bool, max int) []libvirt.DomainMemoryStat {
	var out []libvirt.DomainMemoryStat
	add := func(tag libvirt.DomainMemoryStatTags, v uint64) {
		if len(out) < max {
			out = append(out, libvirt.DomainMemoryStat{Tag: int32(tag), Val: v})
		}
	}
	if haveActual {
		add(libvirt.DomainMemoryStatActualBalloon, uint64(actual)/1024)
	}
	if gs != nil {
		for _, s := range guestStatTags {
			if s.name == "last-update" {
				add(s.tag, uint64(gs.LastUpdate))
				continue
			}
			v, ok := gs.Stats[s.name]
			if !ok || v == qmp.StatUnset {
				continue
			}
			add(s.tag, v/s.divisor)
		}
	}
	if haveRSS {
		add(libvirt.DomainMemoryStatRss, rss)
	}
	return out
}

// MemoryStats implements driver.DomainStats as libvirt's
// qemuDomainMemoryStats: the balloon's figures (query-balloon, the
// balloon device's guest-stats) and QEMU's resident set size.
func (d *Driver) MemoryStats(ctx context.Context, ref libvirt.Domain, max, flags uint32) ([]libvirt.DomainMemoryStat, error) {
	if flags != 0 {
		return nil, errUnsupportedFlags(flags)
	}
	dom, err := d.get(ref)
	if err != nil {
		return nil, err
	}
	mon, err := dom.monitor()
	if err != nil {
		return nil, err
	}
	dom.mu.Lock()
	def, pid := dom.live, 0
	if dom.proc != nil {
		pid = dom.proc.PID()
	}
	dom.mu.Unlock()

	var actual int64
	var haveActual bool
	var gs *qmp.GuestStats
	if path := balloonPath(def); path != "" {
		actual, err = mon.QueryBalloon(ctx)
		var ce *qmp.CommandError
		switch {
		case err == nil:
			haveActual = true
		case errors.As(err, &ce) && ce.Class == qmp.ClassDeviceNotActive:
		default:
			return nil, err
		}
		st, err := mon.BalloonGuestStats(ctx, path)
		if err != nil {
			return nil, err
		}
		gs = &st
	}
	rss, err := process.RSS(pid)
	return memoryStatsFrom(actual, haveActual, gs, rss, err == nil, int(max)), nil
}

// SetMemoryStatsPeriod implements driver.DomainStats as libvirt's
// qemuDomainSetMemoryStatsPeriod: the running balloon polls at the new
// period, and the live or persistent definition records it as
// <memballoon><stats period='N'/> (none for 0).
func (d *Driver) SetMemoryStatsPeriod(ctx context.Context, ref libvirt.Domain, period int32, flags uint32) error {
	if flags&^(affectLive|affectConfig) != 0 {
		return errUnsupportedFlags(flags)
	}
	if period < 0 {
		return compat.Errorf(libvirt.ErrInvalidArg, compat.FromNone, "period in virDomainSetMemoryStatsPeriod must be greater than or equal to zero")
	}
	dom, err := d.get(ref)
	if err != nil {
		return err
	}
	return withJob(ctx, dom, "remoteDispatchDomainSetMemoryStatsPeriod", func() error {
		live, config, err := dom.impactDefs(flags)
		if err != nil {
			return err
		}
		noBalloon := compat.Errorf(libvirt.ErrOperationInvalid, compat.FromQEMU, "No memory balloon device configured, can not set the collection period")
		if live != nil {
			path := balloonPath(live)
			if path == "" {
				return noBalloon
			}
			mon, err := dom.monitor()
			if err != nil {
				return err
			}
			if err := mon.SetBalloonStatsPeriod(ctx, path, int(period)); err != nil {
				return compat.Errorf(libvirt.ErrOperationInvalid, compat.FromQEMU, "unable to set balloon driver collection period")
			}
			nl, err := withBalloonPeriod(live, period)
			if err != nil {
				return err
			}
			if err := d.saveLive(dom, live, nl); err != nil {
				return err
			}
		}
		if config != nil {
			if balloonPath(config) == "" {
				return noBalloon
			}
			nc, err := withBalloonPeriod(config, period)
			if err != nil {
				return err
			}
			return d.saveConfig(dom, config, nc)
		}
		return nil
	})
}

// withBalloonPeriod is a copy of def with the balloon's stats period set.
func withBalloonPeriod(def *libvirtxml.Domain, period int32) (*libvirtxml.Domain, error) {
	c, err := cloneDef(def)
	if err != nil {
		return nil, err
	}
	c.Devices.MemBalloon.Stats = nil
	if period > 0 {
		c.Devices.MemBalloon.Stats = &libvirtxml.DomainMemBalloonStats{Period: uint(period)}
	}
	return c, nil
}
