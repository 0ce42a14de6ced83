package qemu

import (
	"context"
	"sync"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/compat/migcookie"
	"github.com/govirtd/govirtd/compat/migparams"
	"github.com/govirtd/govirtd/driver"
	"github.com/govirtd/govirtd/driver/qemu/convergence"
	"github.com/govirtd/govirtd/driver/qemu/migration"
	"github.com/govirtd/govirtd/driver/qemu/qmp"
)

// migState is a migration in progress on one host.
type migState struct {
	job *migration.Job
	// release frees the domain's job lock, held from Begin (or Prepare)
	// until Confirm (or Finish), so nothing else changes the domain while
	// it moves (libvirt's change protection).
	release func()
	params  *migparams.Params
	// peerCookie is the other host's latest cookie.
	peerCookie *migcookie.Cookie
	// qemuRunning is true while QEMU moves the guest (job info, abort).
	qemuRunning bool
	// postcopy is set once QEMU switched to post-copy: the guest's
	// memory is then split between the hosts, and neither QEMU may be
	// stopped or the source resumed until QEMU completes.
	postcopy bool
	// qemuStatus is the status of QEMU's last MIGRATION event, as the
	// domain's event watcher saw it (under dom.mu); statusChanged is
	// closed and replaced at each change.
	qemuStatus    string
	statusChanged chan struct{}
	// guard is the convergence guard watching this outgoing migration
	// (off unless configured); guardAbort is set when it cancelled it.
	guard       *convergence.Guard
	guardAbort  *convergence.Decision
	savedParams *qmp.MigrationParameters
	// stats are the final QEMU statistics (source, after Perform).
	stats *migparams.JobStats
	// tunnel carries the data of a tunnelled migration (source, p2p).
	tunnel *sourceTunnel
	// incomingPort is the destination's reserved listen port.
	incomingPort int
	// def is the definition the destination prepared to receive.
	def *libvirtxml.Domain
	// srcName is the domain's name on the source, which every cookie
	// carries even when the destination renames it (--dname).
	srcName string
	// injected is a fault injected where no RPC could return it (the
	// destination's perform point); Finish reports it.
	injectedMu sync.Mutex
	injected   error
	// storage is the storage migration (--copy-storage-*), nil without.
	storage *storageMig
	// restoreSpeed puts back the domain's speed limit the migration's
	// bandwidth parameter replaced (called with dom.mu held).
	restoreSpeed func()
}

func (m *migState) setInjected(err error) {
	m.injectedMu.Lock()
	m.injected = err
	m.injectedMu.Unlock()
}

func (m *migState) injectedErr() error {
	m.injectedMu.Lock()
	defer m.injectedMu.Unlock()
	return m.injected
}

// completedJob is what virsh domjobinfo --completed shows.
type completedJob struct {
	stats *migparams.JobStats
}

// Job operations (virDomainJobOperation) for the "operation" statistic.
const (
	jobOperationSave         = migparams.OperationSave
	jobOperationMigrationIn  = migparams.OperationMigrationIn
	jobOperationMigrationOut = migparams.OperationMigrationOut
)

// Job types (virDomainJobType).
const (
	jobNone      = 0
	jobUnbounded = 2
	jobCompleted = 3
	jobFailed    = 4
	jobCancelled = 5
)

func errNotMigrating(name string) error {
	return compat.Errorf(libvirt.ErrOperationInvalid, compat.FromQEMU, "domain '%s' is not being migrated", name)
}

func errNotIncoming(name string) error {
	return compat.Errorf(libvirt.ErrOperationInvalid, compat.FromQEMU, "domain '%s' is not processing incoming migration", name)
}

// beginMigJob takes the domain's job lock for a migration and records the
// job. The lock stays held until endMigJob.
func (d *Driver) beginMigJob(ctx context.Context, dom *domain, role migration.Role, flags uint32, params *migparams.Params) (*migState, error) {
	what := "migration out"
	if role == migration.Destination {
		what = "migration in"
	}
	if m := dom.migJob(migration.Source); m != nil && m.job.Phase == migration.PostcopyFailed {
		// The guest's memory is split with the other host: only a
		// recovery may move it now.
		return nil, compat.Errorf(libvirt.ErrOperationInvalid, compat.FromQEMU, "domain '%s' has a failed post-copy migration: resume it with --postcopy-resume", dom.name)
	}
	release, err := dom.job.acquire(ctx, what)
	if err != nil {
		return nil, err
	}
	m := &migState{job: migration.New(role, uint64(flags)), release: release, params: params}
	m.job.ConnID = driver.ConnID(ctx)
	dom.mu.Lock()
	if role == migration.Source {
		m.job.NotRunningBefore = dom.state != libvirt.DomainRunning
	}
	dom.mig = m
	dom.mu.Unlock()
	return m, nil
}

// endMigJob forgets the migration job and frees the domain's job lock.
func (d *Driver) endMigJob(dom *domain, m *migState) {
	dom.mu.Lock()
	if dom.mig == m {
		dom.mig = nil
	}
	if m.restoreSpeed != nil {
		m.restoreSpeed()
		m.restoreSpeed = nil
	}
	dom.mu.Unlock()
	releaseJobLock(dom, m)
	d.saveStatus(dom)
}

// releaseJobLock frees the domain's job lock the migration holds, once.
// Taken under dom.mu: a QEMU that dies mid-migration ends the job from its
// exit handler while the step's own goroutine may too.
func releaseJobLock(dom *domain, m *migState) {
	dom.mu.Lock()
	release := m.release
	m.release = nil
	dom.mu.Unlock()
	if release != nil {
		release()
	}
}

// advance moves the job to its next phase and persists it, so a restarted
// daemon knows where the migration stood.
func (d *Driver) advance(dom *domain, m *migState, to migration.Phase) error {
	dom.mu.Lock()
	err := m.job.Advance(to)
	dom.mu.Unlock()
	if err != nil {
		if m.job.Role == migration.Destination {
			return errNotIncoming(dom.name)
		}
		return errNotMigrating(dom.name)
	}
	return d.saveStatus(dom)
}

// migJob returns the domain's migration job if it has the given role.
func (dom *domain) migJob(role migration.Role) *migState {
	dom.mu.Lock()
	defer dom.mu.Unlock()
	if dom.mig == nil || dom.mig.job.Role != role {
		return nil
	}
	return dom.mig
}

// jobStatsFromQEMU turns query-migrate's answer into libvirt's statistics
// (libvirt's qemuMigrationAnyFetchStats: data is memory plus disk).
func jobStatsFromQEMU(op int32, info qmp.MigrationInfo, elapsed time.Duration) *migparams.JobStats {
	s := &migparams.JobStats{Operation: op, TimeElapsed: uint64(elapsed.Milliseconds())}
	if info.Downtime != nil {
		s.Downtime, s.DowntimeSet = uint64(*info.Downtime), true
	} else if info.ExpectedDowntime != nil {
		s.Downtime, s.DowntimeSet = uint64(*info.ExpectedDowntime), true
	}
	if info.SetupTime != nil {
		s.SetupTime, s.SetupTimeSet = uint64(*info.SetupTime), true
	}
	if r := info.RAM; r != nil {
		s.MemoryTotal, s.MemoryProcessed, s.MemoryRemaining = uint64(r.Total), uint64(r.Transferred), uint64(r.Remaining)
		s.MemoryBPS = uint64(r.MBps * 1000 * 1000 / 8)
		s.MemoryConstant, s.MemoryNormal, s.MemoryNormalBytes, s.MemoryDuplicateSet = uint64(r.Duplicate), uint64(r.Normal), uint64(r.NormalBytes), true
		s.MemoryDirtyRate = uint64(r.DirtyPagesRate)
		s.MemoryIteration = uint64(r.DirtySyncCount)
		s.MemoryPostcopyRequests = uint64(r.PostcopyRequests)
		s.MemoryPageSize = uint64(r.PageSize)
	}
	if x := info.XBZRLECache; x != nil {
		s.XBZRLESet = true
		s.CompressionCache, s.CompressionBytes, s.CompressionPages = uint64(x.CacheSize), uint64(x.Bytes), uint64(x.Pages)
		s.CompressionCacheMisses, s.CompressionOverflow = uint64(x.CacheMiss), uint64(x.Overflow)
	}
	if dk := info.Disk; dk != nil {
		s.DiskTotal, s.DiskProcessed, s.DiskRemaining = uint64(dk.Total), uint64(dk.Transferred), uint64(dk.Remaining)
	}
	s.DataTotal = s.MemoryTotal + s.DiskTotal
	s.DataProcessed = s.MemoryProcessed + s.DiskProcessed
	s.DataRemaining = s.MemoryRemaining + s.DiskRemaining
	if info.CPUThrottlePercentage != nil {
		s.AutoConvergeThrottle = int32(*info.CPUThrottlePercentage)
	}
	return s
}
