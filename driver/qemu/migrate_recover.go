package qemu

import (
	"context"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat/migparams"
	"github.com/govirtd/govirtd/driver/qemu/migration"
	"github.com/govirtd/govirtd/driver/qemu/qmp"
)

// What happens to a migration whose owner went away: the client connection
// that drove it (managed mode), or the daemon itself (restart).

// resolveWindow is how long the source keeps asking an unreachable
// destination whether it runs the guest before leaving the decision to a
// human (the guest stays paused, resumable).
var resolveWindow = 2 * time.Minute

// ConnectionClosed implements driver.Driver: migrations the closed
// connection was driving are finished or undone.
func (d *Driver) ConnectionClosed(connID uint64) {
	if connID == 0 {
		return
	}
	for _, dom := range d.all() {
		dom.mu.Lock()
		m := dom.mig
		// A failed post-copy migration belongs to nobody: it waits for
		// a recovery from any client.
		owned := m != nil && m.job.ConnID == connID && m.job.Phase != migration.PostcopyFailed
		dom.mu.Unlock()
		if owned {
			go d.abandon(dom, m)
		}
	}
}

// incomingSwitchedToPostcopy tells whether the incoming QEMU is past the
// switch to post-copy.
func (d *Driver) incomingSwitchedToPostcopy(dom *domain) bool {
	mon, err := dom.monitor()
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(d.ctx, 5*time.Second)
	defer cancel()
	info, err := mon.QueryMigrate(ctx)
	return err == nil && (info.Status == qmp.MigrationStatusPostcopyActive || info.Status == qmp.MigrationStatusPostcopyPaused)
}

// abandon handles a migration nobody will finish.
func (d *Driver) abandon(dom *domain, m *migState) {
	dom.mu.Lock()
	phase := m.job.Phase
	qemuRunning := m.qemuRunning
	dom.mu.Unlock()
	log := d.log.With("domain", dom.name, "role", string(m.job.Role), "phase", string(phase))
	switch {
	case m.job.Role == migration.Destination && d.incomingSwitchedToPostcopy(dom):
		// The source stopped for good at the switch: killing this guest
		// would lose it. It is resumed here, as Finish would have.
		log.Warn("client went away after the switch to post-copy: resuming the guest here")
		if err := d.finishPostcopy(dom, m); err == nil {
			if mon, err := dom.monitor(); err == nil {
				d.resetMigrationSettings(d.ctx, dom, mon)
			}
			dom.setState(libvirt.DomainRunning, int32(libvirt.DomainRunningMigrated))
			d.emitLifecycle(dom.ref(), libvirt.DomainEventResumed, int32(libvirt.DomainEventResumedMigrated))
			d.releaseMigrationPort(m.incomingPort)
			d.releaseStorage(m, false)
			d.endMigJob(dom, m)
		}
	case m.job.Role == migration.Destination:
		// Finish will never come: libvirt kills the incoming guest too.
		log.Warn("client went away before Finish: dropping the incoming guest")
		d.abortIncoming(dom, m)
	case phase == migration.Begin3:
		log.Warn("client went away after Begin: ending the migration job")
		d.endMigJob(dom, m)
	case phase == migration.Perform3 || qemuRunning:
		// Perform runs on the driver's context and ends by itself; if it
		// fails it restores the guest and ends the job. If it completes,
		// it is in perform3_done and is resolved below on its next check.
		log.Warn("client went away during Perform: letting the transfer finish")
		go func() {
			for {
				time.Sleep(200 * time.Millisecond)
				dom.mu.Lock()
				cur, p := dom.mig, m.job.Phase
				dom.mu.Unlock()
				if cur != m {
					return
				}
				if p == migration.Perform3Done {
					d.resolve(dom, m)
					return
				}
			}
		}()
	case phase == migration.Perform3Done:
		log.Warn("client went away before Confirm: asking the destination")
		d.resolve(dom, m)
	}
}

// resolve decides the fate of a source whose QEMU completed a migration
// nobody confirmed: stopped if the destination runs the guest, resumed if
// it certainly does not; while unknown, it keeps asking for a while, then
// leaves the guest paused for a human. Never both running.
func (d *Driver) resolve(dom *domain, m *migState) {
	deadline := time.Now().Add(resolveWindow)
	for {
		switch d.peerRunsGuest(d.ctx, dom, m) {
		case peerRuns:
			dom.mu.Lock()
			postcopy := m.postcopy
			dom.mu.Unlock()
			if postcopy {
				// Stopped only once QEMU sent the last page.
				d.confirmPostcopy(dom, m, uint32(m.job.Flags), false)
				return
			}
			d.log.Info("destination runs the guest: stopping the source copy", "domain", dom.name)
			d.finishSource(d.ctx, dom, m, uint32(m.job.Flags))
			return
		case peerDoesNotRun:
			dom.mu.Lock()
			postcopy := m.postcopy
			dom.mu.Unlock()
			if postcopy {
				// After a post-copy switch the guest ran there: this
				// copy is stale and must never run again.
				d.log.Error("destination does not run the post-copy migrated guest: it stays paused here for a --postcopy-resume migration", "domain", dom.name)
				d.failPostcopy(dom, m)
				return
			}
			d.log.Info("destination does not run the guest: resuming it here", "domain", dom.name)
			if mon, err := dom.monitor(); err == nil {
				d.restoreSource(d.ctx, dom, m, mon)
			}
			d.endMigJob(dom, m)
			return
		}
		if time.Now().After(deadline) || d.ctx.Err() != nil {
			d.log.Error("cannot tell whether the destination runs the guest: it stays paused here; resume it only if it does not run there", "domain", dom.name)
			d.endMigJob(dom, m)
			return
		}
		select {
		case <-time.After(2 * time.Second):
		case <-d.ctx.Done():
		}
	}
}

// recoverJob finishes or undoes a migration found in a domain's status
// after a daemon restart (the QEMU process was reattached).
func (d *Driver) recoverJob(ctx context.Context, dom *domain, job *migration.Job) {
	m := &migState{job: job}
	release, err := dom.job.acquire(ctx, "migration recovery")
	if err != nil {
		d.log.Error("recover migration job", "domain", dom.name, "err", err)
		return
	}
	m.release = release
	m.params = &migparams.Params{}
	dom.mu.Lock()
	dom.mig = m
	dom.mu.Unlock()
	log := d.log.With("domain", dom.name, "role", string(job.Role), "phase", string(job.Phase))
	sent := job.Phase != migration.Begin3 && job.Phase != migration.Perform3
	if job.Phase == migration.Perform3 {
		if mon, err := dom.monitor(); err == nil {
			if info, err := mon.QueryMigrate(ctx); err == nil && info.Status == "completed" {
				sent = true
			}
		}
	}
	d.recoverStorage(ctx, dom, m, sent)
	switch {
	case job.Role == migration.Destination && job.Phase == migration.Finish3:
		// The guest was resumed (or about to be): it lives here now.
		log.Info("recovered a finished incoming migration: keeping the guest")
		if mon, err := dom.monitor(); err == nil {
			if st, err := mon.QueryStatus(ctx); err == nil && !st.Running && job.Flags&uint64(migparams.Paused) == 0 {
				mon.Cont(ctx)
			}
		}
		d.endMigJob(dom, m)
	case job.Role == migration.Destination:
		log.Warn("recovered an unfinished incoming migration: dropping the incoming guest")
		d.abortIncoming(dom, m)
	case job.Phase == migration.Begin3:
		log.Info("recovered a migration that had only begun: ending it")
		d.endMigJob(dom, m)
	case job.Phase == migration.Perform3:
		// QEMU waits at pre-switchover for a continue that will never come
		// (or is still copying): cancel and resume here.
		log.Warn("recovered an interrupted transfer: cancelling it and resuming the guest")
		if mon, err := dom.monitor(); err == nil {
			if info, err := mon.QueryMigrate(ctx); err == nil && info.Status == "completed" {
				go d.resolve(dom, m)
				return
			}
			d.restoreSource(ctx, dom, m, mon)
		}
		d.endMigJob(dom, m)
	default:
		// perform3_done, or Confirm interrupted: QEMU completed. Only the
		// destination knows; ask it.
		log.Warn("recovered a completed transfer that was never confirmed: asking the destination")
		go d.resolve(dom, m)
	}
}
