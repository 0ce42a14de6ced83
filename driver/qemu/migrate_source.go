package qemu

import (
	"context"
	"fmt"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/compat/migcookie"
	"github.com/govirtd/govirtd/compat/migparams"
	"github.com/govirtd/govirtd/driver"
	"github.com/govirtd/govirtd/driver/qemu/domainxml"
	"github.com/govirtd/govirtd/driver/qemu/migcheck"
	"github.com/govirtd/govirtd/driver/qemu/migration"
	"github.com/govirtd/govirtd/driver/qemu/qmp"
)

// The source side of migration v3: Begin, Perform, Confirm.

// MigrateBegin3 implements driver.Migration: it checks the domain can
// move, takes its job lock (held until Confirm), and returns the XML the
// destination must run and the Begin cookie.
func (d *Driver) MigrateBegin3(ctx context.Context, ref libvirt.Domain, tp []libvirt.TypedParam, flags uint32) ([]byte, string, error) {
	dom, err := d.get(ref)
	if err != nil {
		return nil, "", err
	}
	params, err := migparams.Parse(tp)
	if err != nil {
		return nil, "", err
	}
	if err := migparams.CheckFlags(migparams.Flags(flags)); err != nil {
		return nil, "", err
	}
	if migparams.Flags(flags)&migparams.PostcopyResume != 0 {
		return d.beginResume(ctx, dom, params, flags)
	}
	m, err := d.beginMigJob(ctx, dom, migration.Source, flags, params)
	if err != nil {
		return nil, "", err
	}
	cookie, xml, err := d.begin(dom, m, flags)
	if err != nil {
		d.endMigJob(dom, m)
		return nil, "", err
	}
	return cookie, xml, nil
}

// begin is Begin's work once the job is held.
func (d *Driver) begin(dom *domain, m *migState, flags uint32) ([]byte, string, error) {
	if err := d.fire("begin", dom); err != nil {
		return nil, "", err
	}
	offline := migparams.Flags(flags)&migparams.Offline != 0
	if err := d.checkTLSForce(flags); err != nil && !offline {
		return nil, "", err
	}
	// qemuMigrationSrcIsAllowed: the snapshots would stay behind.
	if n := d.snaps.Count(dom.name); n > 0 && !offline {
		return nil, "", compat.Errorf(libvirt.ErrOperationInvalid, compat.FromQEMU, "cannot migrate domain with %d snapshots", n)
	}
	dom.mu.Lock()
	live, def, active := dom.live, dom.def, dom.id != -1
	dom.mu.Unlock()
	var src *libvirtxml.Domain
	switch {
	case offline:
		if def == nil {
			return nil, "", compat.Errorf(libvirt.ErrOperationInvalid, compat.FromQEMU, "offline migration requires a persistent domain")
		}
		src = def
	case !active:
		return nil, "", errNotRunning()
	default:
		src = live
		if migparams.Flags(flags)&migparams.Unsafe == 0 {
			if err := migcheck.SafeWith(src, migparams.Flags(flags), migcheck.SafetyOptions{MigrateDisks: m.params.MigrateDisks}); err != nil {
				return nil, "", err
			}
		}
	}
	xml, err := domainxml.Format(src, domainxml.FormatOptions{Inactive: offline, Secure: true, Migratable: true, ChannelDir: d.store.ChannelRoot(), ConfigListen: d.configListen()})
	if err != nil {
		return nil, "", err
	}
	if m.params.DestXML != "" {
		// The user's destination XML (--xml) must keep the guest ABI.
		// It is parsed as the destination will parse it, with libvirt's
		// defaults filled in, so the implicit devices the migratable form
		// leaves out compare equal.
		dst, _, err := d.parseDefinition(m.params.DestXML)
		if err != nil {
			return nil, "", err
		}
		if err := migcheck.CheckABI(src, dst, migcheck.ABIOptions{DestName: m.params.DestName}); err != nil {
			return nil, "", err
		}
		xml = m.params.DestXML
	}
	var caps []migcookie.MigrationCap
	if !offline {
		caps = sourceCookieCaps()
	}
	c := migcookie.ForBegin(d.identity(dom), src.CPU, caps)
	if copyStorage, _ := storageFlags(flags); copyStorage && !offline {
		if c.NBD, err = d.beginStorage(dom, m, live); err != nil {
			return nil, "", err
		}
	}
	cookie, err := c.Marshal()
	if err != nil {
		return nil, "", err
	}
	if err := d.advance(dom, m, migration.Begin3); err != nil {
		return nil, "", err
	}
	if err := d.fire("begin-end", dom); err != nil {
		return nil, "", err
	}
	return cookie, xml, nil
}

// identity names the domain and this host in a cookie. The name is the
// source's even after --dname, as libvirt keeps it: a destination that
// renamed the guest still says the source's name.
func (d *Driver) identity(dom *domain) migcookie.Identity {
	name := dom.name
	dom.mu.Lock()
	if dom.mig != nil && dom.mig.srcName != "" {
		name = dom.mig.srcName
	}
	dom.mu.Unlock()
	return migcookie.Identity{Name: name, UUID: formatUUID(dom.uuid), Hostname: d.opts.Hostname, HostUUID: d.opts.HostUUID}
}

// MigratePerform3 implements driver.Migration. In managed mode the client
// drives both hosts and this runs the transfer; with a destination URI
// (peer-to-peer) this daemon drives the destination itself.
func (d *Driver) MigratePerform3(ctx context.Context, ref libvirt.Domain, dconnuri string, tp []libvirt.TypedParam, cookieIn []byte, flags uint32) ([]byte, error) {
	if migparams.Flags(flags)&migparams.PeerToPeer != 0 || dconnuri != "" {
		if migparams.Flags(flags)&migparams.PostcopyResume != 0 {
			return nil, d.resumePeerToPeer(ctx, ref, dconnuri, tp, flags)
		}
		return nil, d.performPeerToPeer(ctx, ref, dconnuri, tp, flags)
	}
	dom, err := d.get(ref)
	if err != nil {
		return nil, err
	}
	m := dom.migJob(migration.Source)
	if m == nil {
		return nil, errNotMigrating(dom.name)
	}
	params, err := migparams.Parse(tp)
	if err != nil {
		return nil, err
	}
	if m.job.Phase == migration.BeginResume && migparams.Flags(flags)&migparams.PostcopyResume != 0 {
		m.params = params
		return d.performResume(dom, m)
	}
	if m.job.Phase != migration.Begin3 {
		return nil, errNotMigrating(dom.name)
	}
	m.params = params
	return d.perform(dom, m, cookieIn, flags)
}

// perform runs the transfer. The migration's own context is the driver's,
// not the client call's: a client that goes away must not leave QEMU half
// way; its connection's clean-up decides what happens next.
func (d *Driver) perform(dom *domain, m *migState, cookieIn []byte, flags uint32) ([]byte, error) {
	ctx := d.ctx
	fail := func(err error) ([]byte, error) {
		// A failed Perform ends the source job: the client calls Finish
		// (cancelled) on the destination and no Confirm here.
		if mon, merr := dom.monitor(); merr == nil {
			d.restoreSource(ctx, dom, m, mon)
		}
		d.endMigJob(dom, m)
		return nil, err
	}
	peer, err := d.acceptCookie(dom, cookieIn)
	if err != nil {
		return fail(err)
	}
	m.peerCookie = peer
	if peer != nil {
		m.job.PeerHostname, m.job.PeerHostUUID = peer.Hostname, peer.HostUUID
		if peer.Govirtd != nil && m.job.PeerURI == "" {
			m.job.PeerURI = peer.Govirtd.URI
		}
	}
	if err := d.advance(dom, m, migration.Perform3); err != nil {
		return fail(err)
	}
	if err := d.fire("perform", dom); err != nil {
		return fail(err)
	}
	mon, err := dom.monitor()
	if err != nil {
		return fail(err)
	}
	sw := d.stopwatch("perform", dom.name)
	defer sw.done()
	uri := m.params.URI
	if m.tunnel != nil {
		// QEMU sends to this daemon, which forwards into the tunnel.
		if uri, err = m.tunnel.listen(dom); err != nil {
			return fail(m.tunnel.abort(err))
		}
	}
	if uri == "" {
		return fail(compat.Errorf(libvirt.ErrInvalidArg, compat.FromQEMU, "missing migration URI"))
	}
	dom.mu.Lock()
	if m.params.Bandwidth > 0 {
		// The migration's bandwidth is the domain's speed limit while it
		// runs (virsh migrate-getspeed shows it), as in libvirt; the
		// previous limit comes back when the job ends.
		prev := dom.maxSpeed
		m.restoreSpeed = func() { dom.maxSpeed = prev }
		dom.maxSpeed = m.params.Bandwidth
	}
	bw := dom.maxSpeed
	var downtime *int64
	if dom.maxDowntime > 0 {
		v := int64(dom.maxDowntime)
		downtime = &v
	}
	dom.mu.Unlock()
	if m.params.Bandwidth > 0 {
		bw = m.params.Bandwidth
	}
	tuning, err := migparams.TuningFor(migparams.Flags(flags), m.params, migparams.SourceSide)
	if err != nil {
		return fail(err)
	}
	m.guard = d.newGuard(m.params, migparams.Flags(flags))
	run := sourceRun{guard: m.guard, bandwidthMiB: bw, autoConverge: migparams.Flags(flags)&migparams.AutoConverge != 0, downtimeLimit: downtime, tunnelled: m.tunnel != nil, tuning: tuning,
		abortOnError: migparams.Flags(flags)&migparams.AbortOnError != 0}
	if migparams.Flags(flags)&migparams.TLS != 0 {
		// The destination's certificate must name the host the stream
		// goes to, as libvirt sets tls-hostname.
		host, _, err := migrationHost(uri)
		if err != nil {
			return fail(err)
		}
		if err := d.addMigrationTLS(ctx, mon, false); err != nil {
			return fail(err)
		}
		run.tlsHostname = host
	}
	if m.params.HasAutoConvergeInitial {
		v := int64(m.params.AutoConvergeInitial)
		run.acInitial = &v
	}
	if m.params.HasAutoConvergeIncrement {
		v := int64(m.params.AutoConvergeIncrement)
		run.acIncrement = &v
	}
	sw.lap("setup")
	if err := d.copyStorage(dom, m, mon, uri, flags); err != nil {
		if m.tunnel != nil {
			err = m.tunnel.abort(err)
		}
		return fail(err)
	}
	sw.lap("storage copy")
	info, err := d.runSourceMigration(ctx, dom, mon, uri, run)
	if serr := d.endStorageCopy(m, mon, err == nil); err == nil && serr != nil {
		err = serr
	}
	sw.lap("qemu migration")
	if m.tunnel != nil {
		// Done only once the destination confirmed it got everything.
		if err == nil {
			err = m.tunnel.complete(ctx)
		} else {
			err = m.tunnel.abort(err)
		}
	}
	if err != nil {
		return fail(err)
	}
	stats := withGuard(withDisks(jobStatsFromQEMU(jobOperationMigrationOut, info, time.Since(m.job.Started)), m), m)
	m.stats = stats
	if err := d.advance(dom, m, migration.Perform3Done); err != nil {
		return fail(err)
	}
	c := migcookie.ForPerform(d.identity(dom), cookieStats(stats, m.job.Started))
	if m.storage != nil && len(m.storage.disks) > 0 {
		// Tells the destination to stop its NBD server.
		c.NBD = &migcookie.NBD{}
	}
	if migparams.Flags(flags)&migparams.PersistDest != 0 {
		dom.mu.Lock()
		persistent := dom.def
		if persistent == nil {
			persistent = dom.live
		}
		dom.mu.Unlock()
		c.SetPersistent(persistent)
	}
	out, err := c.Marshal()
	if err != nil {
		return nil, err
	}
	sw.lap("cookie")
	if err := d.fire("perform-end", dom); err != nil {
		// QEMU has sent everything: the guest must not be resumed here
		// blindly; Confirm (or the job's recovery) decides.
		return nil, err
	}
	return out, nil
}

// acceptCookie parses and checks the other host's cookie: same-host
// refusal, the domain it names, and the mandatory features.
func (d *Driver) acceptCookie(dom *domain, data []byte) (*migcookie.Cookie, error) {
	c, err := migcookie.Parse(data)
	if err != nil || c == nil {
		return c, err
	}
	if err := c.CheckHost(d.opts.HostUUID); err != nil {
		return nil, err
	}
	if err := c.CheckMandatory(cookieFeatures); err != nil {
		return nil, err
	}
	if err := c.CheckDomain(dom.name, formatUUID(dom.uuid)); err != nil {
		return nil, err
	}
	return c, nil
}

// MigrateConfirm3 implements driver.Migration: the last step on the source.
func (d *Driver) MigrateConfirm3(ctx context.Context, ref libvirt.Domain, tp []libvirt.TypedParam, cookieIn []byte, flags uint32, cancelled bool) error {
	dom, err := d.get(ref)
	if err != nil {
		return err
	}
	m := dom.migJob(migration.Source)
	if m == nil {
		return errNotMigrating(dom.name)
	}
	return d.confirm(dom, m, cookieIn, flags, cancelled)
}

// confirm ends the source side. On success the source QEMU goes; on a
// cancelled migration the source resumes, but only when it is certain the
// destination does not run the guest: a guest must never run twice.
func (d *Driver) confirm(dom *domain, m *migState, cookieIn []byte, flags uint32, cancelled bool) error {
	ctx := d.ctx
	if err := d.fire("confirm", dom); err != nil {
		return err
	}
	if peer, err := migcookie.Parse(cookieIn); err == nil && peer != nil && peer.Govirtd != nil && m.job.PeerURI == "" {
		m.job.PeerURI = peer.Govirtd.URI
	}
	if m.postcopy {
		return d.confirmPostcopy(dom, m, flags, cancelled)
	}
	if !cancelled {
		if err := d.advance(dom, m, migration.Confirm3); err != nil {
			return err
		}
		sw := d.stopwatch("confirm", dom.name)
		d.finishSource(ctx, dom, m, flags)
		sw.done()
		return d.fire("confirm-end", dom)
	}
	if err := d.advance(dom, m, migration.Confirm3Cancelled); err != nil {
		return err
	}
	if m.stats == nil {
		// QEMU never completed (the destination refused in Prepare, or the
		// transfer failed): the source never stopped for good.
		if mon, err := dom.monitor(); err == nil {
			d.restoreSource(ctx, dom, m, mon)
		}
		d.endMigJob(dom, m)
		return d.fire("confirm-end", dom)
	}
	// QEMU reported the migration complete; only the destination knows
	// whether it resumed the guest.
	switch d.peerRunsGuest(ctx, dom, m) {
	case peerRuns:
		d.log.Warn("migration reported failed, but the destination runs the guest: stopping the source copy", "domain", dom.name)
		d.finishSource(ctx, dom, m, flags)
	case peerDoesNotRun:
		if mon, err := dom.monitor(); err == nil {
			d.restoreSource(ctx, dom, m, mon)
		}
		d.endMigJob(dom, m)
	default:
		// Keep asking in the background (the destination may be
		// restarting); the job stays held so nothing else touches the
		// paused guest meanwhile.
		go d.resolve(dom, m)
		return compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU,
			"migration of domain %s completed in QEMU but the destination cannot tell yet whether it runs the guest: the guest stays paused here until it can (see the daemon log)", dom.name)
	}
	return d.fire("confirm-end", dom)
}

// confirmPostcopy is Confirm once QEMU switched to post-copy. The source
// is never resumed then, whatever the destination said: the guest has run
// there, and this copy of its memory is stale. On success it waits for
// QEMU to have sent the last pages (Finish normally waited already) before
// stopping it; if the transfer broke, the guest stays here, paused (post-
// copy failed), for a --postcopy-resume migration.
func (d *Driver) confirmPostcopy(dom *domain, m *migState, flags uint32, cancelled bool) error {
	ctx := d.ctx
	mon, err := dom.monitor()
	if err == nil {
		err = d.waitPostcopy(ctx, dom, m, mon, "migration out")
	}
	if err != nil {
		d.failPostcopy(dom, m)
		if cancelled {
			// The client already has the destination's error.
			return d.fire("confirm-end", dom)
		}
		return err
	}
	if info, qerr := finalMigrationInfo(ctx, mon); qerr == nil {
		m.stats = withGuard(withDisks(jobStatsFromQEMU(jobOperationMigrationOut, info, time.Since(m.job.Started)), m), m)
	}
	if cancelled {
		// QEMU sent everything, but the destination's Finish failed
		// after the guest ran there (it reports and keeps the guest).
		d.log.Warn("post-copy migration completed in QEMU but the destination reported a failure: the source copy is stale and stays paused", "domain", dom.name)
		d.failPostcopy(dom, m)
		return d.fire("confirm-end", dom)
	}
	next := migration.Confirm3
	if m.job.Phase == migration.PerformResume {
		next = migration.ConfirmResume
	}
	if err := d.advance(dom, m, next); err != nil {
		return err
	}
	d.finishSource(ctx, dom, m, flags)
	return d.fire("confirm-end", dom)
}

// errNoFailedPostcopy refuses a --postcopy-resume migration of a domain
// whose migration did not fail in post-copy.
func errNoFailedPostcopy(name string) error {
	return compat.Errorf(libvirt.ErrOperationInvalid, compat.FromQEMU, "domain '%s' has no failed post-copy migration to resume", name)
}

// inPostcopyPaused tells whether the domain's QEMU waits for a post-copy
// recovery (the connection broke after the switch).
func inPostcopyPaused(ctx context.Context, dom *domain) bool {
	mon, err := dom.monitor()
	if err != nil {
		return false
	}
	info, err := mon.QueryMigrate(ctx)
	return err == nil && info.Status == qmp.MigrationStatusPostcopyPaused
}

// beginResume is Begin of a post-copy recovery (VIR_MIGRATE_POSTCOPY_RESUME):
// the failed job is taken up again, with the domain's job lock, and the
// destination is sent the live XML to find its half of the guest by.
func (d *Driver) beginResume(ctx context.Context, dom *domain, params *migparams.Params, flags uint32) ([]byte, string, error) {
	if migparams.Flags(flags)&migparams.Postcopy == 0 {
		return nil, "", compat.Errorf(libvirt.ErrArgumentUnsupported, compat.FromQEMU, "resuming failed post-copy migration requires post-copy to be enabled")
	}
	if !dom.active() {
		return nil, "", errNotRunning()
	}
	m := dom.migJob(migration.Source)
	if m == nil || m.job.Phase != migration.PostcopyFailed || !inPostcopyPaused(ctx, dom) {
		return nil, "", errNoFailedPostcopy(dom.name)
	}
	release, err := dom.job.acquire(ctx, "migration out")
	if err != nil {
		return nil, "", err
	}
	dom.mu.Lock()
	m.release, m.params = release, params
	m.job.Flags = uint64(flags)
	m.job.ConnID = driver.ConnID(ctx)
	live := dom.live
	dom.mu.Unlock()
	if err := d.advance(dom, m, migration.BeginResume); err != nil {
		d.failPostcopy(dom, m)
		return nil, "", err
	}
	xml, err := domainxml.Format(live, domainxml.FormatOptions{Secure: true, Migratable: true, ChannelDir: d.store.ChannelRoot(), ConfigListen: d.configListen()})
	if err == nil {
		var cookie []byte
		if cookie, err = migcookie.ForBegin(d.identity(dom), live.CPU, sourceCookieCaps()).Marshal(); err == nil {
			return cookie, xml, nil
		}
	}
	d.failPostcopy(dom, m)
	return nil, "", err
}

// performResume reconnects the paused source QEMU to the destination,
// which listens again (migrate-recover in its Prepare), and waits for the
// post-copy transfer to run again. A recovery that fails leaves both
// halves as they were, for another try.
func (d *Driver) performResume(dom *domain, m *migState) ([]byte, error) {
	ctx := d.ctx
	fail := func(err error) ([]byte, error) {
		d.failPostcopy(dom, m)
		return nil, err
	}
	if err := d.advance(dom, m, migration.PerformResume); err != nil {
		return fail(err)
	}
	mon, err := dom.monitor()
	if err != nil {
		return fail(err)
	}
	if m.params.URI == "" {
		return fail(compat.Errorf(libvirt.ErrInvalidArg, compat.FromQEMU, "missing migration URI"))
	}
	if m.params.BandwidthPostcopy != 0 {
		bw := int64(m.params.BandwidthPostcopy) << 20
		if err := mon.MigrateSetParameters(ctx, qmp.MigrationParameters{MaxPostcopyBandwidth: &bw}); err != nil {
			return fail(fmt.Errorf("set post-copy bandwidth: %w", err))
		}
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	events := mon.Subscribe(wctx)
	qemuURI, err := connectMigrationStream(wctx, mon, m.params.URI)
	if err != nil {
		return fail(err)
	}
	if err := mon.MigrateResume(wctx, qemuURI); err != nil {
		return fail(compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "migration out job: %v", err))
	}
	recovering := false
	for {
		info, err := mon.QueryMigrate(wctx)
		if err != nil {
			return fail(fmt.Errorf("query resumed migration: %w", err))
		}
		switch info.Status {
		case qmp.MigrationStatusPostcopyRecov:
			recovering = true
		case qmp.MigrationStatusPostcopyActive, qmp.MigrationStatusCompleted:
			d.log.Info("post-copy migration resumed", "domain", dom.name)
			return migcookie.ForPerform(d.identity(dom), nil).Marshal()
		case qmp.MigrationStatusPostcopyPaused:
			if recovering {
				return fail(compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "job 'migration out' failed in post-copy phase"))
			}
		case qmp.MigrationStatusFailed:
			return fail(compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "migration out job: %s", orDefault(info.ErrorDesc, "unexpectedly failed")))
		}
		select {
		case _, ok := <-events:
			if !ok {
				return fail(compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "post-copy recovery did not start within a minute"))
			}
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// finishSource ends a successful outgoing migration: the source QEMU is
// stopped (reported stopped, migrated), its definition removed when asked
// (--undefinesource), and the job's statistics kept for --completed.
func (d *Driver) finishSource(ctx context.Context, dom *domain, m *migState, flags uint32) {
	dom.mu.Lock()
	if m.stats != nil {
		dom.completed = &completedJob{stats: m.stats}
	}
	dom.mu.Unlock()
	if m.job.Flags&uint64(migparams.Offline) == 0 {
		if err := d.stop(ctx, dom, stopCause{reason: libvirt.DomainShutoffMigrated, detail: libvirt.DomainEventStoppedMigrated}, killGrace); err != nil {
			d.log.Error("stop migrated source", "domain", dom.name, "err", err)
		}
	}
	if m.stats != nil {
		d.emit(driver.Event{ID: libvirt.DomainEventIDJobCompleted, Dom: dom.ref(), Params: m.stats.TypedParams()})
	}
	if migparams.Flags(flags)&migparams.UndefineSource != 0 {
		d.endMigJob(dom, m)
		if err := d.Undefine(ctx, dom.ref(), 0); err != nil {
			d.log.Error("undefine migrated source", "domain", dom.name, "err", err)
		}
		return
	}
	d.endMigJob(dom, m)
}

// peer answers: does the destination run the guest?
type peerAnswer int

const (
	peerUnknown peerAnswer = iota
	peerRuns
	peerDoesNotRun
)

func (a peerAnswer) String() string {
	return [...]string{"unknown", "runs the guest", "does not run the guest"}[a]
}
