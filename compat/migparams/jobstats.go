package migparams

import (
	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat/typedparams"
)

// Job statistics parameter names (VIR_DOMAIN_JOB_*).
const (
	JobOperation              = "operation"
	JobTimeElapsed            = "time_elapsed"
	JobTimeElapsedNet         = "time_elapsed_net"
	JobDowntime               = "downtime"
	JobDowntimeNet            = "downtime_net"
	JobSetupTime              = "setup_time"
	JobDataTotal              = "data_total"
	JobDataProcessed          = "data_processed"
	JobDataRemaining          = "data_remaining"
	JobMemoryTotal            = "memory_total"
	JobMemoryProcessed        = "memory_processed"
	JobMemoryRemaining        = "memory_remaining"
	JobMemoryBPS              = "memory_bps"
	JobMemoryConstant         = "memory_constant"
	JobMemoryNormal           = "memory_normal"
	JobMemoryNormalBytes      = "memory_normal_bytes"
	JobMemoryDirtyRate        = "memory_dirty_rate"
	JobMemoryIteration        = "memory_iteration"
	JobMemoryPostcopyRequests = "memory_postcopy_requests"
	JobMemoryPageSize         = "memory_page_size"
	JobDiskTotal              = "disk_total"
	JobDiskProcessed          = "disk_processed"
	JobDiskRemaining          = "disk_remaining"
	JobDiskBPS                = "disk_bps"
	JobCompressionCache       = "compression_cache"
	JobCompressionBytes       = "compression_bytes"
	JobCompressionPages       = "compression_pages"
	JobCompressionCacheMisses = "compression_cache_misses"
	JobCompressionOverflow    = "compression_overflow"
	JobAutoConvergeThrottle   = "auto_converge_throttle"
)

// Job operations (virDomainJobOperation) govirtd reports.
const (
	OperationSave         int32 = 2
	OperationMigrationIn  int32 = 4
	OperationMigrationOut int32 = 5
)

// JobStats is a migration job's statistics as libvirt keeps them
// (virDomainJobData plus QEMU's query-migrate numbers). Times are in
// milliseconds, sizes in bytes. The *Set fields mirror libvirt's "known"
// markers: parameters depending on them are left out when unknown.
type JobStats struct {
	Operation   int32
	TimeElapsed uint64
	// TimeDelta is the clock difference between source and destination
	// (cookie <delta>); with it libvirt derives the *_net values.
	TimeDelta    uint64
	TimeDeltaSet bool
	// Downtime is QEMU's downtime, or its expected downtime while the
	// migration runs (what `virsh domjobinfo` shows as "Expected downtime").
	Downtime     uint64
	DowntimeSet  bool
	SetupTime    uint64
	SetupTimeSet bool

	// Data* are memory plus disk (incl. block mirror) totals; the caller
	// sums them as libvirt does.
	DataTotal, DataProcessed, DataRemaining       uint64
	MemoryTotal, MemoryProcessed, MemoryRemaining uint64
	MemoryBPS                                     uint64 // omitted when 0
	// MemoryConstant/Normal/NormalBytes are known together (QEMU's
	// "duplicate" counter present).
	MemoryConstant, MemoryNormal, MemoryNormalBytes uint64
	MemoryDuplicateSet                              bool
	MemoryDirtyRate                                 uint64
	MemoryIteration                                 uint64
	MemoryPostcopyRequests                          uint64
	MemoryPageSize                                  uint64 // omitted when 0

	// SaveDump marks statistics of a save/dump job: libvirt stops after
	// the memory figures for those.
	SaveDump bool

	DiskTotal, DiskProcessed, DiskRemaining uint64
	DiskBPS                                 uint64 // omitted when 0

	// XBZRLE statistics, present when QEMU reports them.
	XBZRLESet                                bool
	CompressionCache, CompressionBytes       uint64
	CompressionPages, CompressionCacheMisses uint64
	CompressionOverflow                      uint64
	AutoConvergeThrottle                     int32 // percent; omitted when 0

	// ConvergenceGuard is govirtd's own: the convergence guard's
	// decisions so far, "action: reason" joined by "; " (omitted when
	// it took none).
	ConvergenceGuard string
}

// JobConvergenceGuard names ConvergenceGuard among the statistics.
const JobConvergenceGuard = "govirtd.convergence_guard"

// TypedParams renders s as libvirt's qemuDomainMigrationJobDataToParams
// does: same names, order, types (operation and auto_converge_throttle are
// INT, everything else ULLONG) and omission rules. time_remaining is never
// produced: libvirt's QEMU driver only fills it in virDomainGetJobInfo.
func (s *JobStats) TypedParams() []libvirt.TypedParam {
	var l typedparams.List
	l.AddInt(JobOperation, s.Operation)
	l.AddULLong(JobTimeElapsed, s.TimeElapsed)
	if s.TimeDeltaSet && s.TimeElapsed > s.TimeDelta {
		l.AddULLong(JobTimeElapsedNet, s.TimeElapsed-s.TimeDelta)
	}
	if s.DowntimeSet {
		l.AddULLong(JobDowntime, s.Downtime)
		if s.TimeDeltaSet && s.Downtime > s.TimeDelta {
			l.AddULLong(JobDowntimeNet, s.Downtime-s.TimeDelta)
		}
	}
	if s.SetupTimeSet {
		l.AddULLong(JobSetupTime, s.SetupTime)
	}
	l.AddULLong(JobDataTotal, s.DataTotal)
	l.AddULLong(JobDataProcessed, s.DataProcessed)
	l.AddULLong(JobDataRemaining, s.DataRemaining)
	l.AddULLong(JobMemoryTotal, s.MemoryTotal)
	l.AddULLong(JobMemoryProcessed, s.MemoryProcessed)
	l.AddULLong(JobMemoryRemaining, s.MemoryRemaining)
	if s.MemoryBPS != 0 {
		l.AddULLong(JobMemoryBPS, s.MemoryBPS)
	}
	if s.MemoryDuplicateSet {
		l.AddULLong(JobMemoryConstant, s.MemoryConstant)
		l.AddULLong(JobMemoryNormal, s.MemoryNormal)
		l.AddULLong(JobMemoryNormalBytes, s.MemoryNormalBytes)
	}
	l.AddULLong(JobMemoryDirtyRate, s.MemoryDirtyRate)
	l.AddULLong(JobMemoryIteration, s.MemoryIteration)
	l.AddULLong(JobMemoryPostcopyRequests, s.MemoryPostcopyRequests)
	if s.MemoryPageSize > 0 {
		l.AddULLong(JobMemoryPageSize, s.MemoryPageSize)
	}
	if s.SaveDump {
		return l.Params()
	}
	l.AddULLong(JobDiskTotal, s.DiskTotal)
	l.AddULLong(JobDiskProcessed, s.DiskProcessed)
	l.AddULLong(JobDiskRemaining, s.DiskRemaining)
	if s.DiskBPS != 0 {
		l.AddULLong(JobDiskBPS, s.DiskBPS)
	}
	if s.XBZRLESet {
		l.AddULLong(JobCompressionCache, s.CompressionCache)
		l.AddULLong(JobCompressionBytes, s.CompressionBytes)
		l.AddULLong(JobCompressionPages, s.CompressionPages)
		l.AddULLong(JobCompressionCacheMisses, s.CompressionCacheMisses)
		l.AddULLong(JobCompressionOverflow, s.CompressionOverflow)
	}
	if s.AutoConvergeThrottle != 0 {
		l.AddInt(JobAutoConvergeThrottle, s.AutoConvergeThrottle)
	}
	if s.ConvergenceGuard != "" {
		l.AddString(JobConvergenceGuard, s.ConvergenceGuard)
	}
	return l.Params()
}
