package qemu

import (
	"context"
	"errors"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/compat/migparams"
	"github.com/govirtd/govirtd/driver"
	"github.com/govirtd/govirtd/driver/qemu/migration"
	"github.com/govirtd/govirtd/driver/qemu/qmp"
)

// Job queries and controls. None of them waits for the domain's job lock:
// they must answer while a migration holds it (virsh polls job info every
// 500 ms during virsh migrate --verbose).

// jobStatsFlagCompleted is VIR_DOMAIN_JOB_STATS_COMPLETED.
const jobStatsFlagCompleted = 1

// activeStats reads QEMU's progress of the running outgoing migration.
func (d *Driver) activeStats(ctx context.Context, dom *domain) (m *migState, info qmp.MigrationInfo, ok bool) {
	dom.mu.Lock()
	m = dom.mig
	mon := dom.mon
	dom.mu.Unlock()
	if m == nil || mon == nil {
		return m, info, false
	}
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	info, err := mon.QueryMigrate(qctx)
	return m, info, err == nil
}

// GetJobInfo implements driver.Migration.
func (d *Driver) GetJobInfo(ctx context.Context, ref libvirt.Domain) (driver.JobInfo, error) {
	dom, err := d.get(ref)
	if err != nil {
		return driver.JobInfo{}, err
	}
	if !dom.active() {
		return driver.JobInfo{}, errNotRunning()
	}
	m, info, ok := d.activeStats(ctx, dom)
	if m == nil {
		return driver.JobInfo{Type: jobNone}, nil
	}
	ji := driver.JobInfo{Type: jobUnbounded, TimeElapsed: uint64(time.Since(m.job.Started).Milliseconds())}
	if ok && info.RAM != nil {
		ji.DataTotal, ji.DataProcessed, ji.DataRemaining = uint64(info.RAM.Total), uint64(info.RAM.Transferred), uint64(info.RAM.Remaining)
		ji.MemTotal, ji.MemProcessed, ji.MemRemaining = ji.DataTotal, ji.DataProcessed, ji.DataRemaining
	}
	if m.storage != nil && len(m.storage.disks) > 0 {
		p := m.storage.snapshot()
		ji.FileTotal, ji.FileProcessed, ji.FileRemaining = p.Total, p.Processed, p.Remaining
		ji.DataTotal, ji.DataProcessed, ji.DataRemaining = ji.MemTotal+p.Total, ji.MemProcessed+p.Processed, ji.MemRemaining+p.Remaining
	}
	return ji, nil
}

// GetJobStats implements driver.Migration.
func (d *Driver) GetJobStats(ctx context.Context, ref libvirt.Domain, flags uint32) (int32, []libvirt.TypedParam, error) {
	dom, err := d.get(ref)
	if err != nil {
		return 0, nil, err
	}
	if flags&jobStatsFlagCompleted != 0 {
		dom.mu.Lock()
		c := dom.completed
		dom.mu.Unlock()
		if c == nil || c.stats == nil {
			return jobNone, nil, nil
		}
		return jobCompleted, c.stats.TypedParams(), nil
	}
	m, info, ok := d.activeStats(ctx, dom)
	if m == nil {
		return jobNone, nil, nil
	}
	op := jobOperationMigrationOut
	if m.job.Role == migration.Destination {
		op = jobOperationMigrationIn
	}
	if !ok {
		info = qmp.MigrationInfo{}
	}
	return jobUnbounded, withGuard(withDisks(jobStatsFromQEMU(op, info, time.Since(m.job.Started)), m), m).TypedParams(), nil
}

// AbortJob implements driver.Migration: an outgoing migration in QEMU is
// cancelled; Perform then fails with "operation aborted" and restores the
// guest.
func (d *Driver) AbortJob(ctx context.Context, ref libvirt.Domain) error {
	dom, err := d.get(ref)
	if err != nil {
		return err
	}
	if !dom.active() {
		return errNotRunning()
	}
	dom.mu.Lock()
	m, mon := dom.mig, dom.mon
	running := m != nil && m.qemuRunning
	dom.mu.Unlock()
	if m == nil {
		return compat.Errorf(libvirt.ErrOperationInvalid, compat.FromQEMU, "no job is active on the domain")
	}
	if !running && m.storage != nil && m.storage.abortCopy() {
		// The disks are still being copied: the mirrors are abandoned
		// and Perform fails with "operation aborted".
		return nil
	}
	if !running {
		return compat.Errorf(libvirt.ErrOperationInvalid, compat.FromQEMU, "cannot abort migration in post-copy mode or outside its transfer phase")
	}
	return mon.MigrateCancel(ctx)
}

// abortJobPostcopy is VIR_DOMAIN_ABORT_JOB_POSTCOPY.
const abortJobPostcopy = uint32(libvirt.DomainAbortJobPostcopy)

// AbortJobFlags implements driver.Migration. With the post-copy flag it
// breaks the connection of an outgoing migration in post-copy (QEMU's
// migrate-pause), as libvirt ≥ 8.5: both hosts keep the guest, paused
// here and waiting for pages there, until a --postcopy-resume migration.
func (d *Driver) AbortJobFlags(ctx context.Context, ref libvirt.Domain, flags uint32) error {
	if flags&^abortJobPostcopy != 0 {
		return compat.Errorf(libvirt.ErrInvalidArg, compat.FromQEMU, "qemuDomainAbortJobFlags: unsupported flags (0x%x)", flags&^abortJobPostcopy)
	}
	if flags == 0 {
		return d.AbortJob(ctx, ref)
	}
	dom, err := d.get(ref)
	if err != nil {
		return err
	}
	if !dom.active() {
		return errNotRunning()
	}
	dom.mu.Lock()
	m, mon := dom.mig, dom.mon
	inPostcopy := m != nil && m.job.Role == migration.Source && m.postcopy && m.job.Phase != migration.PostcopyFailed
	dom.mu.Unlock()
	if !inPostcopy || mon == nil {
		return compat.Errorf(libvirt.ErrOperationInvalid, compat.FromQEMU, "current job is not outgoing migration in post-copy mode")
	}
	if err := mon.MigratePause(ctx); err != nil {
		return compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "%v", err)
	}
	return nil
}

// MigrateStartPostCopy implements driver.Migration with libvirt 9.0's
// checks (qemuDomainMigrateStartPostCopy).
func (d *Driver) MigrateStartPostCopy(ctx context.Context, ref libvirt.Domain, flags uint32) error {
	if flags != 0 {
		return compat.Errorf(libvirt.ErrInvalidArg, compat.FromQEMU, "qemuDomainMigrateStartPostCopy: unsupported flags (0x%x)", flags)
	}
	dom, err := d.get(ref)
	if err != nil {
		return err
	}
	if !dom.active() {
		return errNotRunning()
	}
	dom.mu.Lock()
	m, mon := dom.mig, dom.mon
	outgoing := m != nil && m.job.Role == migration.Source && (m.job.Phase == migration.Begin3 || m.job.Phase == migration.Perform3)
	var postcopyAllowed bool
	if outgoing {
		postcopyAllowed = m.job.Flags&uint64(migparams.Postcopy) != 0
	}
	dom.mu.Unlock()
	if !outgoing || mon == nil {
		return compat.Errorf(libvirt.ErrOperationInvalid, compat.FromQEMU, "post-copy can only be started while outgoing migration is in progress")
	}
	if !postcopyAllowed {
		return compat.Errorf(libvirt.ErrOperationInvalid, compat.FromQEMU, "switching to post-copy requires migration to be started with VIR_MIGRATE_POSTCOPY flag")
	}
	if err := mon.MigrateStartPostcopy(ctx); err != nil {
		return compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "%v", err)
	}
	d.log.Info("migration switching to post-copy", "domain", dom.name)
	return nil
}

// migrationParams reads the running domain's migration parameters from
// QEMU (the getters of settings libvirt keeps in QEMU only).
func (d *Driver) migrationParams(ctx context.Context, ref libvirt.Domain) (qmp.MigrationParameters, error) {
	dom, err := d.get(ref)
	if err != nil {
		return qmp.MigrationParameters{}, err
	}
	mon, err := dom.monitor()
	if err != nil {
		return qmp.MigrationParameters{}, err
	}
	return mon.QueryMigrateParameters(ctx)
}

// MigrateGetCompressionCache implements driver.Migration: QEMU's
// xbzrle-cache-size of the running domain, as libvirt 9.0 reads it.
func (d *Driver) MigrateGetCompressionCache(ctx context.Context, ref libvirt.Domain, flags uint32) (uint64, error) {
	if flags != 0 {
		return 0, compat.Errorf(libvirt.ErrInvalidArg, compat.FromQEMU, "qemuDomainMigrateGetCompressionCache: unsupported flags (0x%x)", flags)
	}
	p, err := d.migrationParams(ctx, ref)
	if err != nil {
		return 0, asOperationFailed(err)
	}
	if p.XBZRLECacheSize == nil {
		return 0, compat.Errorf(libvirt.ErrOperationUnsupported, compat.FromQEMU, "Compressed migration is not supported by QEMU binary")
	}
	return uint64(*p.XBZRLECacheSize), nil
}

// asOperationFailed reports a QMP failure as libvirt's operation failed;
// libvirt's own errors (no domain, not running) pass as they are.
func asOperationFailed(err error) error {
	var le *compat.Error
	if errors.As(err, &le) {
		return err
	}
	return compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "%v", err)
}

// MigrateSetCompressionCache implements driver.Migration: it sets QEMU's
// xbzrle-cache-size (bytes), also during a migration.
func (d *Driver) MigrateSetCompressionCache(ctx context.Context, ref libvirt.Domain, size uint64, flags uint32) error {
	if flags != 0 {
		return compat.Errorf(libvirt.ErrInvalidArg, compat.FromQEMU, "qemuDomainMigrateSetCompressionCache: unsupported flags (0x%x)", flags)
	}
	dom, err := d.get(ref)
	if err != nil {
		return err
	}
	mon, err := dom.monitor()
	if err != nil {
		return err
	}
	if size > 1<<62 {
		return compat.Errorf(libvirt.ErrInvalidArg, compat.FromQEMU, "cache size %d is too large", size)
	}
	v := int64(size)
	if err := mon.MigrateSetParameters(ctx, qmp.MigrationParameters{XBZRLECacheSize: &v}); err != nil {
		return compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "%v", err)
	}
	return nil
}

// maxSpeedPostcopy is VIR_DOMAIN_MIGRATE_MAX_SPEED_POSTCOPY.
const maxSpeedPostcopy = uint32(libvirt.DomainMigrateMaxSpeedPostcopy)

// MigrateSetMaxSpeed implements driver.Migration (MiB/s); a running
// migration takes the new limit at once. With the post-copy flag it sets
// QEMU's post-copy limit of the running domain (libvirt keeps that one
// in QEMU only).
func (d *Driver) MigrateSetMaxSpeed(ctx context.Context, ref libvirt.Domain, mibps uint64, flags uint32) error {
	dom, err := d.get(ref)
	if err != nil {
		return err
	}
	if flags&^maxSpeedPostcopy != 0 {
		return compat.Errorf(libvirt.ErrInvalidArg, compat.FromQEMU, "qemuDomainMigrateSetMaxSpeed: unsupported flags (0x%x)", flags&^maxSpeedPostcopy)
	}
	if mibps > maxBandwidthMiB {
		return compat.Errorf(libvirt.ErrOverflow, compat.FromQEMU, "bandwidth must be less than %d", maxBandwidthMiB+1)
	}
	if flags&maxSpeedPostcopy != 0 {
		mon, err := dom.monitor()
		if err != nil {
			return err
		}
		bw := int64(mibps) << 20
		if err := mon.MigrateSetParameters(ctx, qmp.MigrationParameters{MaxPostcopyBandwidth: &bw}); err != nil {
			return compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "%v", err)
		}
		return nil
	}
	dom.mu.Lock()
	dom.maxSpeed = mibps
	m, mon := dom.mig, dom.mon
	dom.mu.Unlock()
	if m != nil && mon != nil {
		bw := int64(mibps) << 20
		if mibps == 0 {
			bw = unlimitedBandwidth
		}
		return mon.MigrateSetParameters(ctx, qmp.MigrationParameters{MaxBandwidth: &bw})
	}
	return nil
}

// maxBandwidthMiB is libvirt's QEMU_DOMAIN_MIG_BANDWIDTH_MAX: the largest
// limit QEMU can take, reported as the limit when there is none.
const maxBandwidthMiB = uint64(1<<63-1) >> 20

// MigrateGetMaxSpeed implements driver.Migration.
func (d *Driver) MigrateGetMaxSpeed(ctx context.Context, ref libvirt.Domain, flags uint32) (uint64, error) {
	dom, err := d.get(ref)
	if err != nil {
		return 0, err
	}
	if flags&^maxSpeedPostcopy != 0 {
		return 0, compat.Errorf(libvirt.ErrInvalidArg, compat.FromQEMU, "qemuDomainMigrateGetMaxSpeed: unsupported flags (0x%x)", flags&^maxSpeedPostcopy)
	}
	if flags&maxSpeedPostcopy != 0 {
		p, err := d.migrationParams(ctx, ref)
		if err != nil {
			return 0, asOperationFailed(err)
		}
		if p.MaxPostcopyBandwidth == nil {
			return 0, compat.Errorf(libvirt.ErrOperationUnsupported, compat.FromQEMU, "querying maximum post-copy migration speed is not supported by QEMU binary")
		}
		return uint64(*p.MaxPostcopyBandwidth) >> 20, nil
	}
	dom.mu.Lock()
	defer dom.mu.Unlock()
	if dom.maxSpeed == 0 {
		return maxBandwidthMiB, nil
	}
	return dom.maxSpeed, nil
}

// MigrateSetMaxDowntime implements driver.Migration (ms).
func (d *Driver) MigrateSetMaxDowntime(ctx context.Context, ref libvirt.Domain, ms uint64, flags uint32) error {
	dom, err := d.get(ref)
	if err != nil {
		return err
	}
	mon, err := dom.monitor()
	if err != nil {
		return err
	}
	v := int64(ms)
	if err := mon.MigrateSetParameters(ctx, qmp.MigrationParameters{DowntimeLimit: &v}); err != nil {
		return compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "%v", err)
	}
	dom.mu.Lock()
	dom.maxDowntime = ms
	dom.mu.Unlock()
	return nil
}

// MigrateGetMaxDowntime implements driver.Migration.
func (d *Driver) MigrateGetMaxDowntime(ctx context.Context, ref libvirt.Domain, flags uint32) (uint64, error) {
	p, err := d.migrationParams(ctx, ref)
	if err != nil {
		return 0, err
	}
	if p.DowntimeLimit == nil {
		return 0, compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "Querying migration downtime is not supported by QEMU binary")
	}
	return uint64(*p.DowntimeLimit), nil
}
