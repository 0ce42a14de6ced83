package migcookie

import (
	"fmt"
	"strings"
)

// Statistics is <statistics>: the completed migration job as the source
// saw it (Perform cookie), and as the destination recomputed it with its
// own clock (Finish cookie), so that both ends report the same job.
// Fields are in the order libvirt 9.0 prints them
// (qemuMigrationCookieStatisticsXMLFormat). Times are milliseconds since
// the Unix epoch; durations are milliseconds.
type Statistics struct {
	// Started is when the job began (the source's Begin step), Stopped
	// when the guest CPUs were paused for the switchover, Sent when the
	// Perform cookie was made.
	Started, Stopped, Sent uint64
	// Delta is the destination's receive time minus Sent: the transfer
	// time of the cookie plus any clock difference between the hosts.
	// Only the Finish cookie carries it.
	Delta *int64
	// TimeElapsed is the job's duration so far (time_elapsed).
	TimeElapsed uint64
	// Downtime is how long the guest has been paused; SetupTime is how
	// long QEMU took to set the migration up. Both are printed only when
	// QEMU reported them.
	Downtime, SetupTime *uint64

	MemoryTotal, MemoryProcessed, MemoryRemaining, MemoryBPS uint64
	// Pages is printed only when QEMU reported duplicate pages.
	Pages                                                    *PageStats
	MemoryDirtyRate, MemoryIteration, MemoryPostcopyRequests uint64
	MemoryPageSize                                           uint64

	DiskTotal, DiskProcessed, DiskRemaining, DiskBPS uint64

	// Compression is printed only when QEMU reported XBZRLE statistics.
	Compression *CompressionStats

	// AutoConvergeThrottle is the CPU throttle in percent.
	AutoConvergeThrottle int32
}

// PageStats are memory_constant, memory_normal and memory_normal_bytes,
// which libvirt prints together or not at all.
type PageStats struct {
	Constant, Normal, NormalBytes uint64
}

// CompressionStats are the XBZRLE compression_* values, printed together
// or not at all.
type CompressionStats struct {
	Cache, Bytes, Pages, CacheMisses, Overflow uint64
}

// AtDestination is what the destination puts in its Finish cookie
// (qemuMigrationDstFinish followed by qemuDomainJobDataUpdateTime and
// qemuDomainJobDataUpdateDowntime): the source's statistics with Delta =
// received - Sent, TimeElapsed = now - Started and Downtime = now -
// Stopped, where received is when the Perform cookie arrived and now is
// when the Finish cookie is made, both by the destination's clock in ms
// since the epoch. Values libvirt would not recompute (no start or stop
// time, or one in the future) are left as the source sent them.
func (s Statistics) AtDestination(received, now uint64) *Statistics {
	out := s.clone()
	if s.Sent != 0 && received != 0 {
		d := int64(received - s.Sent)
		out.Delta = &d
	}
	if s.Started != 0 && now >= s.Started {
		out.TimeElapsed = now - s.Started
	}
	if s.Stopped != 0 && now >= s.Stopped {
		d := now - s.Stopped
		out.Downtime = &d
	}
	return out
}

// clone copies s deeply, so that the copy's optional values can change
// without touching s.
func (s Statistics) clone() *Statistics {
	out := s
	out.Delta = clonePtr(s.Delta)
	out.Downtime = clonePtr(s.Downtime)
	out.SetupTime = clonePtr(s.SetupTime)
	out.Pages = clonePtr(s.Pages)
	out.Compression = clonePtr(s.Compression)
	return &out
}

// clonePtr returns a pointer to a copy of *p, or nil.
func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	c := *p
	return &c
}

func (s *Statistics) write(b *strings.Builder) {
	u := func(name string, v uint64) { fmt.Fprintf(b, "    <%s>%d</%s>\n", name, v, name) }
	b.WriteString("  <statistics>\n")
	u("started", s.Started)
	u("stopped", s.Stopped)
	u("sent", s.Sent)
	if s.Delta != nil {
		fmt.Fprintf(b, "    <delta>%d</delta>\n", *s.Delta)
	}
	u("time_elapsed", s.TimeElapsed)
	if s.Downtime != nil {
		u("downtime", *s.Downtime)
	}
	if s.SetupTime != nil {
		u("setup_time", *s.SetupTime)
	}
	u("memory_total", s.MemoryTotal)
	u("memory_processed", s.MemoryProcessed)
	u("memory_remaining", s.MemoryRemaining)
	u("memory_bps", s.MemoryBPS)
	if p := s.Pages; p != nil {
		u("memory_constant", p.Constant)
		u("memory_normal", p.Normal)
		u("memory_normal_bytes", p.NormalBytes)
	}
	u("memory_dirty_rate", s.MemoryDirtyRate)
	u("memory_iteration", s.MemoryIteration)
	u("memory_postcopy_requests", s.MemoryPostcopyRequests)
	u("memory_page_size", s.MemoryPageSize)
	u("disk_total", s.DiskTotal)
	u("disk_processed", s.DiskProcessed)
	u("disk_remaining", s.DiskRemaining)
	u("disk_bps", s.DiskBPS)
	if c := s.Compression; c != nil {
		u("compression_cache", c.Cache)
		u("compression_bytes", c.Bytes)
		u("compression_pages", c.Pages)
		u("compression_cache_misses", c.CacheMisses)
		u("compression_overflow", c.Overflow)
	}
	fmt.Fprintf(b, "    <auto_converge_throttle>%d</auto_converge_throttle>\n", s.AutoConvergeThrottle)
	b.WriteString("  </statistics>\n")
}

// parseStats is qemuMigrationCookieStatisticsXMLParse: each value is the
// first element of its name; a missing or malformed number is left at
// zero (or unset) without an error, as libvirt ignores
// virXPathULongLong's failures.
func parseStats(n *node) *Statistics {
	s := &Statistics{}
	u := func(name string) (uint64, bool) { return parseULL(n.childText(name)) }
	v := func(name string) uint64 { x, _ := u(name); return x }
	opt := func(name string) *uint64 {
		if x, ok := u(name); ok {
			return &x
		}
		return nil
	}
	s.Started = v("started")
	s.Stopped = v("stopped")
	s.Sent = v("sent")
	if d, ok := parseLL(n.childText("delta")); ok {
		s.Delta = &d
	}
	s.TimeElapsed = v("time_elapsed")
	s.Downtime = opt("downtime")
	s.SetupTime = opt("setup_time")
	s.MemoryTotal = v("memory_total")
	s.MemoryProcessed = v("memory_processed")
	s.MemoryRemaining = v("memory_remaining")
	s.MemoryBPS = v("memory_bps")
	if c, ok := u("memory_constant"); ok {
		s.Pages = &PageStats{Constant: c, Normal: v("memory_normal"), NormalBytes: v("memory_normal_bytes")}
	}
	s.MemoryDirtyRate = v("memory_dirty_rate")
	s.MemoryIteration = v("memory_iteration")
	s.MemoryPostcopyRequests = v("memory_postcopy_requests")
	s.MemoryPageSize = v("memory_page_size")
	s.DiskTotal = v("disk_total")
	s.DiskProcessed = v("disk_processed")
	s.DiskRemaining = v("disk_remaining")
	s.DiskBPS = v("disk_bps")
	if c, ok := u("compression_cache"); ok {
		s.Compression = &CompressionStats{
			Cache:       c,
			Bytes:       v("compression_bytes"),
			Pages:       v("compression_pages"),
			CacheMisses: v("compression_cache_misses"),
			Overflow:    v("compression_overflow"),
		}
	}
	if t, ok := parseLL(n.childText("auto_converge_throttle")); ok && t >= -1<<31 && t < 1<<31 {
		s.AutoConvergeThrottle = int32(t)
	}
	return s
}
