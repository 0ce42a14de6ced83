package qemu

import (
	"time"

	"github.com/govirtd/govirtd/compat/migcookie"
	"github.com/govirtd/govirtd/compat/migparams"
)

// cookieFeatures are the mandatory cookie parts govirtd understands when
// it receives a cookie: lock state (no lock manager, as libvirt's default
// "nop"), the guest CPU, the persistent definition, statistics and the
// migration capabilities.
var cookieFeatures = []string{
	migcookie.FeatureLockState, migcookie.FeatureCPU, migcookie.FeaturePersistent,
	migcookie.FeatureStatistics, migcookie.FeatureCapabilities,
}

// sourceCookieCaps and destCookieCaps are the capability lists each side
// sends: QEMU 7.2 supports every capability libvirt 9.0 knows.
func sourceCookieCaps() []migcookie.MigrationCap {
	return migcookie.Caps(migcookie.Source, migcookie.KnownCaps())
}

func destCookieCaps() []migcookie.MigrationCap {
	return migcookie.Caps(migcookie.Destination, migcookie.KnownCaps())
}

// cookieStats turns a finished job's statistics into the cookie's: times
// since the epoch for when it started, stopped and was sent.
func cookieStats(s *migparams.JobStats, started time.Time) *migcookie.Statistics {
	now := uint64(time.Now().UnixMilli())
	st := &migcookie.Statistics{
		Started:                uint64(started.UnixMilli()),
		Sent:                   now,
		TimeElapsed:            s.TimeElapsed,
		MemoryTotal:            s.MemoryTotal,
		MemoryProcessed:        s.MemoryProcessed,
		MemoryRemaining:        s.MemoryRemaining,
		MemoryBPS:              s.MemoryBPS,
		MemoryDirtyRate:        s.MemoryDirtyRate,
		MemoryIteration:        s.MemoryIteration,
		MemoryPostcopyRequests: s.MemoryPostcopyRequests,
		MemoryPageSize:         s.MemoryPageSize,
		DiskTotal:              s.DiskTotal,
		DiskProcessed:          s.DiskProcessed,
		DiskRemaining:          s.DiskRemaining,
		DiskBPS:                s.DiskBPS,
		AutoConvergeThrottle:   s.AutoConvergeThrottle,
	}
	if s.DowntimeSet {
		d := s.Downtime
		st.Downtime = &d
		st.Stopped = now - s.Downtime
	}
	if s.SetupTimeSet {
		v := s.SetupTime
		st.SetupTime = &v
	}
	if s.MemoryDuplicateSet {
		st.Pages = &migcookie.PageStats{Constant: s.MemoryConstant, Normal: s.MemoryNormal, NormalBytes: s.MemoryNormalBytes}
	}
	return st
}

// jobStatsFromCookie is the destination's view of a finished incoming
// migration, from the source's statistics.
func jobStatsFromCookie(c *migcookie.Statistics, op int32) *migparams.JobStats {
	s := &migparams.JobStats{
		Operation:              op,
		TimeElapsed:            c.TimeElapsed,
		MemoryTotal:            c.MemoryTotal,
		MemoryProcessed:        c.MemoryProcessed,
		MemoryRemaining:        c.MemoryRemaining,
		MemoryBPS:              c.MemoryBPS,
		MemoryDirtyRate:        c.MemoryDirtyRate,
		MemoryIteration:        c.MemoryIteration,
		MemoryPostcopyRequests: c.MemoryPostcopyRequests,
		MemoryPageSize:         c.MemoryPageSize,
		DiskTotal:              c.DiskTotal,
		DiskProcessed:          c.DiskProcessed,
		DiskRemaining:          c.DiskRemaining,
		DiskBPS:                c.DiskBPS,
		AutoConvergeThrottle:   c.AutoConvergeThrottle,
	}
	if c.Downtime != nil {
		s.Downtime, s.DowntimeSet = *c.Downtime, true
	}
	if c.SetupTime != nil {
		s.SetupTime, s.SetupTimeSet = *c.SetupTime, true
	}
	if c.Delta != nil && *c.Delta >= 0 {
		s.TimeDelta, s.TimeDeltaSet = uint64(*c.Delta), true
	}
	if c.Pages != nil {
		s.MemoryConstant, s.MemoryNormal, s.MemoryNormalBytes, s.MemoryDuplicateSet = c.Pages.Constant, c.Pages.Normal, c.Pages.NormalBytes, true
	}
	s.DataTotal = s.MemoryTotal + s.DiskTotal
	s.DataProcessed = s.MemoryProcessed + s.DiskProcessed
	s.DataRemaining = s.MemoryRemaining + s.DiskRemaining
	return s
}
