package qemu

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/compat/migparams"
	"github.com/govirtd/govirtd/driver"
	"github.com/govirtd/govirtd/driver/qemu/convergence"
	"github.com/govirtd/govirtd/driver/qemu/migration"
	"github.com/govirtd/govirtd/driver/qemu/qmp"
)

// The QMP side of a migration, in the order libvirt 9.0 drives QEMU 7.2
// (captured sequences: protocol facts §7).

// unlimitedBandwidth is what libvirt sets for "no limit": INT64_MAX rounded
// down to whole MiB.
const unlimitedBandwidth = int64(9223372036853727232)

// errMigrationAborted is libvirt's error for a migration cancelled by
// virDomainAbortJob.
func errMigrationAborted() error {
	return compat.Errorf(libvirt.ErrOperationAborted, compat.FromQEMU, "job 'migration out' canceled by client")
}

// sourceRun is one outgoing QEMU migration.
type sourceRun struct {
	bandwidthMiB  uint64 // 0 = unlimited
	autoConverge  bool
	tunnelled     bool
	acInitial     *int64
	acIncrement   *int64
	downtimeLimit *int64
	tuning        migparams.Tuning // compression, parallel connections
	// tlsHostname is the name the destination's certificate must carry,
	// for a --tls migration ("" without TLS).
	tlsHostname string
	// guard is the convergence guard (nil or disabled: libvirt's
	// behaviour).
	guard *convergence.Guard
	// abortOnError (VIR_MIGRATE_ABORT_ON_ERROR) cancels the migration
	// when a disk I/O error pauses the guest.
	abortOnError bool
}

// errIOErrorAbort is libvirt's error for a migration cancelled by
// --abort-on-error.
func errIOErrorAbort() error {
	return compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "migration out job: failed due to I/O error")
}

// newGuard makes the convergence guard of an outgoing migration: the
// policy of qemu.conf's migration_convergence_* keys, the stall time
// overridable by the govirtd.convergence_stall parameter; the actions this
// migration can take follow from its flags.
func (d *Driver) newGuard(p *migparams.Params, flags migparams.Flags) *convergence.Guard {
	stall := d.qconf.ConvergenceStall
	if p.HasConvergenceStall {
		stall = time.Duration(p.ConvergenceStall) * time.Second
	}
	return convergence.New(convergence.Policy{Stall: stall, Actions: d.qconf.ConvergenceActions}, map[convergence.Action]bool{
		convergence.Throttle: flags&migparams.AutoConverge != 0,
		convergence.Postcopy: flags&migparams.Postcopy != 0,
		convergence.Abort:    true,
	})
}

// guardDecisions renders a guard's decisions for the job statistics.
func guardDecisions(g *convergence.Guard) string {
	if g == nil {
		return ""
	}
	var parts []string
	for _, d := range g.Decisions() {
		parts = append(parts, string(d.Action)+": "+d.Reason)
	}
	return strings.Join(parts, "; ")
}

// withGuard adds the convergence guard's decisions to job statistics.
func withGuard(st *migparams.JobStats, m *migState) *migparams.JobStats {
	if m != nil {
		st.ConvergenceGuard = guardDecisions(m.guard)
	}
	return st
}

// checkConvergence gives the guard a sample of the migration's progress
// and carries out what it decides. Each decision is logged and kept in
// the job statistics; an abort is reported by the cancellation it causes.
func (d *Driver) checkConvergence(ctx context.Context, dom *domain, mon *qmp.Monitor, g *convergence.Guard) {
	info, err := mon.QueryMigrate(ctx)
	if err != nil || info.RAM == nil || info.Status != qmp.MigrationStatusActive {
		return
	}
	r := info.RAM
	dec, ok := g.Observe(convergence.Sample{
		At: time.Now(), Remaining: uint64(r.Remaining), Iteration: uint64(r.DirtySyncCount),
		DirtyRate: uint64(r.DirtyPagesRate) * uint64(r.PageSize), Bandwidth: uint64(r.MBps * 1e6 / 8),
	})
	if !ok {
		return
	}
	d.log.Warn("convergence guard", "domain", dom.name, "action", string(dec.Action), "reason", dec.Reason)
	switch dec.Action {
	case convergence.Throttle:
		// A higher start and step: QEMU raises the throttle by the step
		// at each pass that still does not converge.
		initial, increment := int64(50), int64(30)
		err = mon.MigrateSetParameters(ctx, qmp.MigrationParameters{CPUThrottleInitial: &initial, CPUThrottleIncrement: &increment})
	case convergence.Postcopy:
		err = mon.MigrateStartPostcopy(ctx)
	case convergence.Abort:
		dom.mu.Lock()
		if dom.mig != nil {
			dom.mig.guardAbort = &dec
		}
		dom.mu.Unlock()
		err = mon.MigrateCancel(ctx)
	}
	if err != nil {
		d.log.Error("convergence guard action failed", "domain", dom.name, "action", string(dec.Action), "err", err)
	}
}

// migrationTLSAlias is the id of a --tls migration's credentials object
// in QEMU (libvirt's name for it).
const migrationTLSAlias = "objlibvirt_migrate_tls0"

// addMigrationTLS gives QEMU the x509 credentials of a --tls migration
// from qemu.conf's migrate_tls_x509_cert_dir: the server's on the
// destination (checking the source's client certificate when
// migrate_tls_x509_verify says so), the client's on the source (which
// always checks the destination's certificate).
func (d *Driver) addMigrationTLS(ctx context.Context, mon *qmp.Monitor, server bool) error {
	dir := d.qconf.MigrateTLSDir
	endpoint, files := "client", []string{"ca-cert.pem", "client-cert.pem", "client-key.pem"}
	if server {
		endpoint, files = "server", []string{"ca-cert.pem", "server-cert.pem", "server-key.pem"}
	}
	for _, f := range files {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return compat.Errorf(libvirt.ErrOperationInvalid, compat.FromQEMU, "migration TLS credentials missing in migrate_tls_x509_cert_dir %s: %v", dir, err)
		}
	}
	mon.ObjectDel(ctx, migrationTLSAlias) // a previous migration's, if any
	if err := mon.ObjectAddTLSCredsX509(ctx, migrationTLSAlias, dir, endpoint, !server || d.qconf.MigrateTLSVerify); err != nil {
		return compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "migration TLS credentials: %v", err)
	}
	return nil
}

// runSourceMigration sends the guest to uri and waits for QEMU to finish.
// The guest is paused by QEMU itself once the last pass starts; on success
// it stays paused (the destination may still fail), on failure the caller
// restores it.
func (d *Driver) runSourceMigration(ctx context.Context, dom *domain, mon *qmp.Monitor, uri string, r sourceRun) (qmp.MigrationInfo, error) {
	saved, err := mon.QueryMigrateParameters(ctx)
	if err != nil {
		return qmp.MigrationInfo{}, fmt.Errorf("query migration parameters: %w", err)
	}
	dom.mu.Lock()
	if dom.mig != nil {
		dom.mig.savedParams = &saved
	}
	dom.mu.Unlock()
	if err := d.setMigrationCaps(ctx, dom, mon, withTuning(sourceCaps(r.autoConverge, r.tunnelled), r.tuning)); err != nil {
		return qmp.MigrationInfo{}, fmt.Errorf("set migration capabilities: %w", err)
	}
	empty := ""
	bw := unlimitedBandwidth
	if r.bandwidthMiB > 0 {
		bw = int64(r.bandwidthMiB) << 20
	}
	creds, host := &empty, &empty
	if r.tlsHostname != "" {
		alias := migrationTLSAlias
		creds, host = &alias, &r.tlsHostname
	}
	p := qmp.MigrationParameters{TLSCreds: creds, TLSHostname: host, MaxBandwidth: &bw,
		CPUThrottleInitial: r.acInitial, CPUThrottleIncrement: r.acIncrement, DowntimeLimit: r.downtimeLimit}
	tuningParams(&p, r.tuning)
	if err := mon.MigrateSetParameters(ctx, p); err != nil {
		return qmp.MigrationInfo{}, fmt.Errorf("set migration parameters: %w", err)
	}
	// Subscribe before starting, so no status event can be missed.
	evctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events := mon.Subscribe(evctx)
	var qemuURI string
	if addr, ok := tcpMigrationAddr(uri); ok && r.tuning.Multifd {
		// multifd opens a connection per channel itself, so QEMU gets
		// the address, not one socket (libvirt does the same).
		qemuURI = "tcp:" + addr
	} else if qemuURI, err = connectMigrationStream(ctx, mon, uri); err != nil {
		return qmp.MigrationInfo{}, err
	}
	var guardTick <-chan time.Time
	if r.guard.Enabled() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		guardTick = t.C
		if sk := r.guard.Skipped(); len(sk) > 0 {
			d.log.Info("convergence guard: actions this migration cannot take are passed over", "domain", dom.name, "skipped", fmt.Sprint(sk))
		}
	}
	if r.abortOnError {
		dom.mu.Lock()
		ioPaused := dom.state == libvirt.DomainPaused && dom.reason == int32(libvirt.DomainPausedIoerror)
		dom.mu.Unlock()
		if ioPaused {
			return qmp.MigrationInfo{}, errIOErrorAbort()
		}
	}
	started := time.Now()
	if err := mon.Migrate(ctx, qemuURI); err != nil {
		return qmp.MigrationInfo{}, compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "migration out job: %v", err)
	}
	dom.mu.Lock()
	if dom.mig != nil {
		dom.mig.qemuRunning = true
	}
	dom.mu.Unlock()
	defer func() {
		dom.mu.Lock()
		if dom.mig != nil {
			dom.mig.qemuRunning = false
		}
		dom.mu.Unlock()
	}()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return qmp.MigrationInfo{}, compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "migration out job: QEMU went away during migration")
			}
			switch ev.Name {
			case qmp.EventBlockIOError:
				// libvirt checks for a guest paused by an I/O error
				// while it waits for the migration; the event is that
				// pause.
				if r.abortOnError && ioErrorAction(ev.DataString("action")) == libvirt.DomainEventIoErrorPause {
					d.log.Warn("disk I/O error during migration: aborting it (--abort-on-error)", "domain", dom.name)
					mon.MigrateCancel(ctx)
					return qmp.MigrationInfo{}, errIOErrorAbort()
				}
			case "MIGRATION_PASS":
				if pass, ok := ev.Data["pass"].(float64); ok {
					d.emit(driver.Event{ID: libvirt.DomainEventIDMigrationIteration, Dom: dom.ref(), Iteration: int32(pass)})
				}
			case "MIGRATION":
				status, _ := ev.Data["status"].(string)
				switch status {
				case qmp.MigrationStatusPreSwitchover:
					if err := mon.MigrateContinue(ctx, qmp.MigrationStatusPreSwitchover); err != nil {
						return qmp.MigrationInfo{}, compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "migration out job: %v", err)
					}
				case qmp.MigrationStatusPostcopyActive:
					// The point of no return: the destination gets the
					// guest's CPUs and pulls the pages it lacks from here.
					// Perform ends now, as libvirt's does; the transfer
					// goes on through Finish, and Confirm waits for it.
					dom.mu.Lock()
					if dom.mig != nil {
						dom.mig.postcopy = true
					}
					dom.mu.Unlock()
					info, _ := mon.QueryMigrate(ctx)
					d.log.Debug("migration switched to post-copy", "domain", dom.name, "wall", time.Since(started))
					return info, nil
				case qmp.MigrationStatusCompleted:
					info, err := finalMigrationInfo(ctx, mon)
					if err != nil {
						return qmp.MigrationInfo{}, fmt.Errorf("query final migration statistics: %w", err)
					}
					d.log.Debug("migration sent", "domain", dom.name, "wall", time.Since(started),
						"qemu_total_ms", deref(info.TotalTime), "qemu_setup_ms", deref(info.SetupTime), "qemu_downtime_ms", deref(info.Downtime))
					return info, nil
				case qmp.MigrationStatusFailed:
					info, _ := mon.QueryMigrate(ctx)
					desc := info.ErrorDesc
					if desc == "" {
						desc = "unexpectedly failed"
					}
					return info, compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "migration out job: %s", desc)
				case qmp.MigrationStatusCancelled:
					dom.mu.Lock()
					var abort *convergence.Decision
					if dom.mig != nil {
						abort = dom.mig.guardAbort
					}
					dom.mu.Unlock()
					if abort != nil {
						// The decision is an event too: the job ends here,
						// and job-completed carries its statistics and the
						// guard's reason (govirtd.convergence_guard).
						info, _ := mon.QueryMigrate(ctx)
						st := jobStatsFromQEMU(jobOperationMigrationOut, info, time.Since(started))
						st.ConvergenceGuard = guardDecisions(r.guard)
						d.emit(driver.Event{ID: libvirt.DomainEventIDJobCompleted, Dom: dom.ref(), Params: st.TypedParams()})
						return qmp.MigrationInfo{}, compat.Errorf(libvirt.ErrOperationAborted, compat.FromQEMU, "migration out job: aborted by govirtd's convergence guard: %s", abort.Reason)
					}
					return qmp.MigrationInfo{}, errMigrationAborted()
				}
			}
		case <-guardTick:
			d.checkConvergence(ctx, dom, mon, r.guard)
		case <-ctx.Done():
			mon.MigrateCancel(context.Background())
			return qmp.MigrationInfo{}, ctx.Err()
		}
	}
}

// finalMigrationInfo reads the statistics of a completed migration. QEMU
// 7.2 announces "completed" a moment before it stores the total time and
// downtime (query-migrate then shows neither), so a missing total time is
// asked again, briefly.
func finalMigrationInfo(ctx context.Context, mon *qmp.Monitor) (qmp.MigrationInfo, error) {
	for try := 0; ; try++ {
		info, err := mon.QueryMigrate(ctx)
		if err != nil || try == 20 || (info.TotalTime != nil && *info.TotalTime > 0) {
			return info, err
		}
		time.Sleep(time.Millisecond)
	}
}

// restoreSource undoes an outgoing migration that did not complete:
// migration settings back as they were, and the guest running again if the
// migration paused it.
func (d *Driver) restoreSource(ctx context.Context, dom *domain, m *migState, mon *qmp.Monitor) {
	// A cancel in flight must be finished before the guest runs again.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		info, err := mon.QueryMigrate(ctx)
		if err != nil || (info.Status != qmp.MigrationStatusCancelling && info.Status != qmp.MigrationStatusActive && info.Status != qmp.MigrationStatusPreSwitchover && info.Status != qmp.MigrationStatusDevice && info.Status != qmp.MigrationStatusSetup) {
			break
		}
		if info.Status != qmp.MigrationStatusCancelling {
			mon.MigrateCancel(ctx)
		}
		time.Sleep(50 * time.Millisecond)
	}
	d.resetMigrationSettings(ctx, dom, mon)
	if m != nil && m.job.NotRunningBefore {
		// Paused before the migration (virsh suspend, an I/O error):
		// it stays so, as libvirt resumes only a guest that ran
		// (qemuMigrationSrcRestoreDomainState).
		return
	}
	d.resumeAfterMigration(ctx, dom, mon)
}

// resetMigrationSettings turns the migration capabilities off and restores
// the parameters read before the migration, as libvirt does.
func (d *Driver) resetMigrationSettings(ctx context.Context, dom *domain, mon *qmp.Monitor) {
	if err := d.setMigrationCaps(ctx, dom, mon, allCapsOff()); err != nil {
		d.log.Warn("reset migration capabilities", "domain", dom.name, "err", err)
	}
	dom.mu.Lock()
	var saved *qmp.MigrationParameters
	if dom.mig != nil {
		saved = dom.mig.savedParams
	}
	dom.mu.Unlock()
	if saved != nil {
		// QEMU refuses tls-authz "" on 7.2 when it was never set; send only
		// what the restore needs.
		saved.TLSAuthz = nil
		saved.BlockBitmapMapping = nil
		if err := mon.MigrateSetParameters(ctx, *saved); err != nil {
			d.log.Warn("restore migration parameters", "domain", dom.name, "err", err)
		}
	}
	// A --tls migration's credentials go once no parameter names them.
	mon.ObjectDel(ctx, migrationTLSAlias)
}

// resumeAfterMigration starts the guest's CPUs again when a migration had
// paused it, reporting it the way libvirt does (resumed, migrated).
func (d *Driver) resumeAfterMigration(ctx context.Context, dom *domain, mon *qmp.Monitor) {
	st, err := mon.QueryStatus(ctx)
	if err != nil {
		d.log.Error("query status to resume after migration", "domain", dom.name, "err", err)
		return
	}
	if st.Running {
		dom.setState(libvirt.DomainRunning, int32(libvirt.DomainRunningMigrationCanceled))
		return
	}
	if err := contAsRunning(ctx, dom, mon, int32(libvirt.DomainRunningMigrationCanceled)); err != nil {
		d.log.Error("resume after failed migration", "domain", dom.name, "err", err)
		return
	}
	d.saveStatus(dom)
	d.emitLifecycle(dom.ref(), libvirt.DomainEventResumed, int32(libvirt.DomainEventResumedMigrated))
}

// startIncoming prepares a freshly started destination QEMU (-incoming
// defer) and makes it listen for the stream.
func (d *Driver) startIncoming(ctx context.Context, dom *domain, mon *qmp.Monitor, listenURI string, tunnelled bool, tuning migparams.Tuning, tls bool) error {
	// Kept to be restored after the migration (resetMigrationSettings),
	// as on the source: this QEMU may be a source next, and must not
	// carry this migration's multifd channels or compression threads.
	saved, err := mon.QueryMigrateParameters(ctx)
	if err != nil {
		return fmt.Errorf("query migration parameters: %w", err)
	}
	dom.mu.Lock()
	if dom.mig != nil {
		dom.mig.savedParams = &saved
	}
	dom.mu.Unlock()
	if err := d.setMigrationCaps(ctx, dom, mon, withTuning(destCaps(tunnelled), tuning)); err != nil {
		return fmt.Errorf("set migration capabilities: %w", err)
	}
	empty := ""
	params := qmp.MigrationParameters{TLSCreds: &empty, TLSHostname: &empty}
	if tls {
		if err := d.addMigrationTLS(ctx, mon, true); err != nil {
			return err
		}
		alias := migrationTLSAlias
		params.TLSCreds = &alias
	}
	tuningParams(&params, tuning)
	if err := mon.MigrateSetParameters(ctx, params); err != nil {
		return fmt.Errorf("set migration parameters: %w", err)
	}
	if err := mon.MigrateIncoming(ctx, listenURI); err != nil {
		return compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "migration in job: %v", err)
	}
	return nil
}

// waitIncoming waits for the destination QEMU to have received the whole
// guest — or, in a migration allowed to switch to post-copy, to have
// switched (postcopy true then): its guest must be resumed before the
// rest can arrive. In the normal flow it already has when Finish arrives.
func waitIncoming(ctx context.Context, mon *qmp.Monitor, timeout time.Duration, allowPostcopy bool) (postcopy bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	events := mon.Subscribe(ctx)
	for {
		info, err := mon.QueryMigrate(ctx)
		if err != nil {
			return false, fmt.Errorf("query incoming migration: %w", err)
		}
		switch info.Status {
		case qmp.MigrationStatusCompleted:
			return false, nil
		case qmp.MigrationStatusPostcopyActive, qmp.MigrationStatusPostcopyPaused:
			if allowPostcopy {
				return true, nil
			}
		case qmp.MigrationStatusFailed:
			return false, compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "migration in job: %s", orDefault(info.ErrorDesc, "unexpectedly failed"))
		case qmp.MigrationStatusCancelled:
			return false, compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "migration in job: canceled")
		}
		select {
		case _, ok := <-events:
			if !ok {
				if ctx.Err() != nil {
					return false, compat.Errorf(libvirt.ErrOperationTimeout, compat.FromQEMU, "incoming migration did not complete")
				}
				return false, compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "migration in job: QEMU went away")
			}
		case <-ctx.Done():
			return false, compat.Errorf(libvirt.ErrOperationTimeout, compat.FromQEMU, "incoming migration did not complete")
		}
	}
}

// waitPostcopy waits for a migration that switched to post-copy to end in
// QEMU (job is libvirt's name of it, "migration in" or "migration out").
// There is no time limit: the guest already runs on the destination and
// only completion, a break, or the operator's destroy ends the wait. A
// break (postcopy-paused) is libvirt's "failed in post-copy phase".
//
// The status is the one the domain's event watcher last saw, never an
// in-band query: a post-copy destination whose connection broke may not
// answer one again (its main loop waits for a page that cannot come),
// while its events still arrive (the monitor runs out of band).
func (d *Driver) waitPostcopy(ctx context.Context, dom *domain, m *migState, mon *qmp.Monitor, job string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	gone := mon.Subscribe(ctx) // closes when QEMU goes away
	for {
		dom.mu.Lock()
		status, changed := m.qemuStatus, m.statusChanged
		if changed == nil {
			changed = make(chan struct{})
			m.statusChanged = changed
		}
		dom.mu.Unlock()
		switch status {
		case qmp.MigrationStatusCompleted:
			return nil
		case qmp.MigrationStatusPostcopyPaused, qmp.MigrationStatusFailed:
			return compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "job '%s' failed in post-copy phase", job)
		}
		select {
		case <-changed:
		case _, ok := <-gone:
			if !ok {
				return compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "job '%s': QEMU went away in post-copy phase", job)
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func deref(p *int64) int64 {
	if p == nil {
		return -1
	}
	return *p
}

// checkTLSForce is qemu.conf's migrate_tls_force: migrations only with
// --tls.
func (d *Driver) checkTLSForce(flags uint32) error {
	if d.qconf.MigrateTLSForce && migparams.Flags(flags)&(migparams.TLS|migparams.Offline) == 0 {
		return compat.Errorf(libvirt.ErrOperationInvalid, compat.FromQEMU, "this libvirtd instance allows migration only with VIR_MIGRATE_TLS flag")
	}
	return nil
}

// postcopyStatus reports QEMU's post-copy states the way libvirt 9.0 does
// (qemuProcessHandleMigrationStatus): on the source, paused (post-copy)
// once the guest runs on the destination, paused (post-copy failed) when
// the connection breaks; on the destination, running (post-copy failed)
// when the break leaves its running guest waiting for pages.
func (d *Driver) postcopyStatus(dom *domain, status string) {
	dom.mu.Lock()
	m := dom.mig
	if m == nil || dom.id == -1 {
		dom.mu.Unlock()
		return
	}
	if m.qemuStatus != status {
		m.qemuStatus = status
		if m.statusChanged != nil {
			close(m.statusChanged)
		}
		m.statusChanged = make(chan struct{})
	}
	var event, detail int32 = -1, 0
	switch {
	case status == qmp.MigrationStatusPostcopyActive:
		m.postcopy = true
		switch {
		case m.job.Role == migration.Source && dom.state == libvirt.DomainPaused && dom.reason != int32(libvirt.DomainPausedPostcopy):
			dom.reason = int32(libvirt.DomainPausedPostcopy)
			event, detail = int32(libvirt.DomainEventSuspended), int32(libvirt.DomainEventSuspendedPostcopy)
		case m.job.Role == migration.Destination && dom.state == libvirt.DomainRunning && dom.reason == int32(libvirt.DomainRunningPostcopyFailed):
			// Recovered: the pages flow again.
			dom.reason = int32(libvirt.DomainRunningPostcopy)
			event, detail = int32(libvirt.DomainEventResumed), int32(libvirt.DomainEventResumedPostcopy)
		}
	case status == qmp.MigrationStatusPostcopyPaused:
		m.postcopy = true
		switch {
		case dom.state == libvirt.DomainRunning && dom.reason != int32(libvirt.DomainRunningPostcopyFailed):
			dom.reason = int32(libvirt.DomainRunningPostcopyFailed)
			event, detail = int32(libvirt.DomainEventResumed), int32(libvirt.DomainEventResumedPostcopyFailed)
		case dom.state == libvirt.DomainPaused && dom.reason != int32(libvirt.DomainPausedPostcopyFailed):
			dom.reason = int32(libvirt.DomainPausedPostcopyFailed)
			event, detail = int32(libvirt.DomainEventSuspended), int32(libvirt.DomainEventSuspendedPostcopyFailed)
		}
	}
	dom.mu.Unlock()
	if event >= 0 {
		d.saveStatus(dom)
		d.emitLifecycle(dom.ref(), libvirt.DomainEventType(event), detail)
	}
}
