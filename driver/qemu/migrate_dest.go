package qemu

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/compat/migcookie"
	"github.com/govirtd/govirtd/compat/migparams"
	"github.com/govirtd/govirtd/driver"
	"github.com/govirtd/govirtd/driver/qemu/domainxml"
	"github.com/govirtd/govirtd/driver/qemu/migration"
	"github.com/govirtd/govirtd/driver/qemu/process"
)

// The destination side of migration v3: Prepare and Finish.

// incomingTimeout bounds how long Finish waits for a stream QEMU is still
// receiving (normally it has finished when Finish arrives).
var incomingTimeout = 60 * time.Second

// MigratePrepare3 implements driver.Migration: it creates the incoming
// domain, starts its QEMU waiting for the stream, and returns the URI the
// source must send to.
func (d *Driver) MigratePrepare3(ctx context.Context, tp []libvirt.TypedParam, cookieIn []byte, flags uint32) ([]byte, string, error) {
	return d.prepare(ctx, tp, cookieIn, flags, nil)
}

// prepare is Prepare, direct or tunnelled: with a stream, the incoming QEMU
// gets the migration data from it instead of listening on a port.
func (d *Driver) prepare(ctx context.Context, tp []libvirt.TypedParam, cookieIn []byte, flags uint32, stream io.ReadCloser) ([]byte, string, error) {
	sw := d.stopwatch("prepare", "")
	defer sw.done()
	params, err := migparams.Parse(tp)
	if err != nil {
		return nil, "", err
	}
	if err := migparams.CheckFlags(migparams.Flags(flags)); err != nil {
		return nil, "", err
	}
	tuning, err := migparams.TuningFor(migparams.Flags(flags), params, migparams.DestinationSide)
	if err != nil {
		return nil, "", err
	}
	if err := d.checkTLSForce(flags); err != nil {
		return nil, "", err
	}
	if stream != nil && migparams.Flags(flags)&migparams.Offline != 0 {
		return nil, "", compat.Errorf(libvirt.ErrOperationInvalid, compat.FromQEMU, "tunnelled offline migration does not make sense")
	}
	if err := d.fire("prepare", nil); err != nil {
		return nil, "", err
	}
	cookie, err := migcookie.Parse(cookieIn)
	if err != nil {
		return nil, "", err
	}
	if cookie != nil {
		if err := cookie.CheckHost(d.opts.HostUUID); err != nil {
			return nil, "", err
		}
		if err := cookie.CheckMandatory(cookieFeatures); err != nil {
			return nil, "", err
		}
	}
	if params.DestXML == "" {
		return nil, "", compat.Errorf(libvirt.ErrInvalidArg, compat.FromQEMU, "no domain XML passed")
	}
	def, uuid, err := d.parseDefinition(params.DestXML)
	if err != nil {
		return nil, "", err
	}
	if cookie != nil {
		if err := cookie.CheckDomain(def.Name, formatUUID(uuid)); err != nil {
			return nil, "", err
		}
	}
	if params.DestName != "" {
		def.Name = params.DestName
	}
	sw.forDomain(def.Name)
	sw.lap("parse")
	if migparams.Flags(flags)&migparams.PostcopyResume != 0 {
		if stream != nil {
			return nil, "", compat.Errorf(libvirt.ErrArgumentUnsupported, compat.FromQEMU, "post-copy is not supported with tunnelled migration")
		}
		return d.prepareResume(ctx, def.Name, uuid, params, flags)
	}
	// Claim the name and UUID, as libvirt does before starting anything.
	d.mu.Lock()
	dom, err := d.checkClash(def.Name, uuid)
	if err == nil && dom != nil && dom.active() {
		err = compat.Errorf(libvirt.ErrOperationInvalid, compat.FromDomain, "domain '%s' is already active", def.Name)
	}
	if err != nil {
		d.mu.Unlock()
		return nil, "", err
	}
	created := dom == nil
	if created {
		dom = newDomain(def.Name, uuid)
		d.addLocked(dom)
	}
	d.mu.Unlock()
	var rb migration.Rollback
	rb.Add("register incoming domain", func() error {
		if created {
			d.remove(dom)
		}
		return nil
	})

	m, err := d.beginMigJob(ctx, dom, migration.Destination, flags, params)
	if err != nil {
		rb.Run()
		return nil, "", err
	}
	rb.Add("migration job", func() error { d.endMigJob(dom, m); return nil })
	if cookie != nil {
		m.peerCookie = cookie
		m.job.PeerHostname, m.job.PeerHostUUID = cookie.Hostname, cookie.HostUUID
		if cookie.Govirtd != nil {
			m.job.PeerURI = cookie.Govirtd.URI
		}
	}
	m.job.DestName = def.Name
	m.def = def
	if cookie != nil {
		m.srcName = cookie.Name
	}
	if err := d.advance(dom, m, migration.Prepare); err != nil {
		rb.Run()
		return nil, "", err
	}

	out := migcookie.New(d.identity(dom))
	out.Govirtd = &migcookie.Extension{URI: d.opts.SelfURI}
	offline := migparams.Flags(flags)&migparams.Offline != 0
	var uri string
	if offline {
		// Nothing runs for an offline migration; Finish defines the domain.
		dom.mu.Lock()
		dom.live = nil
		dom.mu.Unlock()
		uri, err = d.incomingURI(params, 0)
		if err != nil {
			rb.Run()
			return nil, "", err
		}
	} else {
		port := 0
		if stream == nil {
			if port, err = d.reserveMigrationPort(params); err != nil {
				rb.Run()
				return nil, "", err
			}
			m.incomingPort = port
		}
		copyStorage, incremental := storageFlags(flags)
		copyStorage = copyStorage && stream == nil && cookie != nil && cookie.NBD != nil
		if copyStorage {
			if err := d.prepareStorageImages(ctx, m, def, cookie.NBD, incremental); err != nil {
				rb.Run()
				return nil, "", err
			}
			rb.Add("storage migration images and port", func() error { d.releaseStorage(m, true); return nil })
		}
		sw.lap("setup")
		if err := d.start(ctx, dom, def, startOptions{incoming: "defer"}); err != nil {
			rb.Run()
			return nil, "", err
		}
		sw.lap("qemu start")
		rb.Add("incoming QEMU", func() error {
			return d.stop(d.ctx, dom, stopCause{reason: libvirt.DomainShutoffFailed, detail: libvirt.DomainEventStoppedFailed}, time.Second)
		})
		dom.setState(libvirt.DomainPaused, int32(libvirt.DomainPausedMigration))
		mon, err := dom.monitor()
		if err != nil {
			rb.Run()
			return nil, "", err
		}
		if stream != nil {
			err = d.startTunnelIncoming(ctx, dom, mon, stream)
		} else {
			err = d.startIncoming(ctx, dom, mon, "tcp:"+net.JoinHostPort(d.migrationListenAddress(params), strconv.Itoa(port)), false, tuning, migparams.Flags(flags)&migparams.TLS != 0)
		}
		if err != nil {
			rb.Run()
			return nil, "", err
		}
		sw.lap("migrate-incoming")
		if copyStorage {
			if out.NBD, err = d.serveStorage(ctx, dom, m, mon, cookie.NBD); err != nil {
				rb.Run()
				return nil, "", err
			}
			sw.lap("nbd server")
		}
		go d.watchIncoming(dom, m)
		if stream == nil {
			uri, err = d.prepareURIOut(params, port)
			if err != nil {
				rb.Run()
				return nil, "", err
			}
		}
		out.Caps = destCookieCaps()
		d.emitLifecycle(dom.ref(), libvirt.DomainEventStarted, int32(libvirt.DomainEventStartedMigrated))
	}
	data, err := out.Marshal()
	if err != nil {
		rb.Run()
		return nil, "", err
	}
	if err := d.fire("prepare-end", dom); err != nil {
		rb.Run()
		return nil, "", err
	}
	rb.Discard()
	sw.lap("cookie")
	d.saveStatus(dom)
	sw.lap("save status")
	return data, uri, nil
}

// watchIncoming fires the destination's "perform" fault point when its
// QEMU starts receiving the stream.
func (d *Driver) watchIncoming(dom *domain, m *migState) {
	if _, ok := d.faults["perform"]; !ok {
		if _, ok := d.faults["perform-end"]; !ok {
			return
		}
	}
	mon, err := dom.monitor()
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(d.ctx, 10*time.Minute)
	defer cancel()
	events := mon.Subscribe(ctx)
	for ev := range events {
		if ev.Name != "MIGRATION" {
			continue
		}
		// An injected "error" here has no RPC to fail; it makes this
		// migration's Finish fail instead.
		switch ev.Data["status"] {
		case "active":
			if err := d.fire("perform", dom); err != nil {
				m.setInjected(err)
			}
		case "completed":
			if err := d.fire("perform-end", dom); err != nil {
				m.setInjected(err)
			}
			return
		case "failed", "cancelled":
			return
		}
	}
}

// migrationListenAddress is where an incoming QEMU listens: the
// listen_address parameter, qemu.conf's migration_address, or everywhere.
func (d *Driver) migrationListenAddress(p *migparams.Params) string {
	switch {
	case p.ListenAddress != "":
		return p.ListenAddress
	case d.qconf.MigrationAddress != "":
		return d.qconf.MigrationAddress
	}
	return "0.0.0.0"
}

// incomingURI is the URI the source's QEMU connects to. Its host part is
// qemu.conf's migration_host, else a specific migration_address, else the
// host name — as libvirt, whose hostname default needs the name to resolve
// on the source; govirtd prefers an address when it has one.
func (d *Driver) incomingURI(p *migparams.Params, port int) (string, error) {
	host := d.qconf.MigrationHost
	if host == "" {
		if a := d.migrationListenAddress(p); a != "0.0.0.0" && a != "::" && a != "[::]" {
			host = a
		} else if d.opts.ListenAddr != "" && d.opts.ListenAddr != "0.0.0.0" && d.opts.ListenAddr != "::" {
			host = d.opts.ListenAddr
		} else {
			host = d.opts.Hostname
		}
	}
	return "tcp:" + net.JoinHostPort(strings.Trim(host, "[]"), strconv.Itoa(port)), nil
}

// parseMigrationURI splits a client's migrate_uri in the forms libvirt
// accepts, QEMU's "tcp:HOST[:PORT]" and the URI "tcp://HOST[:PORT][/]",
// into its host and port (0: none given).
func parseMigrationURI(uri string) (host string, port int, wellFormed bool, err error) {
	bad := compat.Errorf(libvirt.ErrInvalidArg, compat.FromQEMU, "unable to parse migration URI %s", uri)
	addr, ok := tcpMigrationAddr(uri)
	if !ok || addr == "" {
		return "", 0, false, bad
	}
	wellFormed = strings.HasPrefix(uri, "tcp://")
	h, portStr, serr := net.SplitHostPort(addr)
	if serr != nil {
		// No port: the whole of it is the host.
		return strings.Trim(addr, "[]"), 0, wellFormed, nil
	}
	if port, err = strconv.Atoi(portStr); err != nil || port <= 0 || port > 65535 {
		return "", 0, false, bad
	}
	return h, port, wellFormed, nil
}

// prepareURIOut is the URI Prepare returns, as libvirt 9.0's
// qemuMigrationDstPrepareDirect: none when the client's URI names a port,
// so the source connects where the client said (a proxy, a NAT address);
// the client's URI with the chosen port when it names none; this host's
// own when the client gave no URI.
func (d *Driver) prepareURIOut(p *migparams.Params, port int) (string, error) {
	if p.URI == "" {
		return d.incomingURI(p, port)
	}
	host, given, wellFormed, err := parseMigrationURI(p.URI)
	switch {
	case err != nil:
		return "", err
	case given != 0:
		return "", nil
	case wellFormed:
		return "tcp://" + net.JoinHostPort(host, strconv.Itoa(port)), nil
	}
	return fmt.Sprintf("%s:%d", p.URI, port), nil
}

// reserveMigrationPort picks the port of an incoming migration: the one in
// the client's URI (--migrateuri tcp:HOST:PORT), or the first free one of
// migration_port_min..max.
func (d *Driver) reserveMigrationPort(p *migparams.Params) (int, error) {
	if p.URI != "" {
		_, port, _, err := parseMigrationURI(p.URI)
		if err != nil {
			return 0, err
		}
		if port != 0 {
			return port, nil
		}
	}
	addr := d.migrationListenAddress(p)
	d.portMu.Lock()
	defer d.portMu.Unlock()
	for port := d.qconf.MigrationPortMin; port <= d.qconf.MigrationPortMax; port++ {
		if d.portsInUse[port] {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort(addr, strconv.Itoa(port)))
		if err != nil {
			continue
		}
		l.Close()
		d.portsInUse[port] = true
		return port, nil
	}
	return 0, compat.Errorf(libvirt.ErrSystemError, compat.FromQEMU, "Unable to find an unused port in range 'migration' (%d-%d)", d.qconf.MigrationPortMin, d.qconf.MigrationPortMax)
}

func (d *Driver) releaseMigrationPort(port int) {
	d.portMu.Lock()
	delete(d.portsInUse, port)
	d.portMu.Unlock()
}

// MigrateFinish3 implements driver.Migration: on success the guest runs
// here (unless --suspend); cancelled, the incoming QEMU is killed.
func (d *Driver) MigrateFinish3(ctx context.Context, tp []libvirt.TypedParam, cookieIn []byte, flags uint32, cancelled bool) (libvirt.Domain, []byte, error) {
	params, err := migparams.Parse(tp)
	if err != nil {
		return libvirt.Domain{}, nil, err
	}
	cookie, err := migcookie.Parse(cookieIn)
	if err != nil {
		return libvirt.Domain{}, nil, err
	}
	name := params.DestName
	if name == "" && cookie != nil {
		name = cookie.Name
	}
	d.mu.RLock()
	dom := d.byName[name]
	d.mu.RUnlock()
	if dom == nil && cookie != nil {
		if u, err := parseUUID(cookie.UUID); err == nil {
			d.mu.RLock()
			dom = d.byUUID[u]
			d.mu.RUnlock()
		}
	}
	if dom == nil {
		// An incoming QEMU that died takes its domain along; what killed
		// it is the useful answer (libvirt's qemuMigrationDstErrorReport).
		if err := d.incomingErrors.take(name); err != nil {
			return libvirt.Domain{}, nil, err
		}
		return libvirt.Domain{}, nil, errNoDomainName(name)
	}
	m := dom.migJob(migration.Destination)
	if m == nil {
		return libvirt.Domain{}, nil, errNotIncoming(dom.name)
	}
	return d.finish(dom, m, cookie, flags, cancelled)
}

func (d *Driver) finish(dom *domain, m *migState, cookie *migcookie.Cookie, flags uint32, cancelled bool) (libvirt.Domain, []byte, error) {
	ctx := d.ctx
	sw := d.stopwatch("finish", dom.name)
	defer sw.done()
	defer d.releaseMigrationPort(m.incomingPort)
	if err := d.fire("finish", dom); err != nil {
		d.abortIncoming(dom, m)
		return libvirt.Domain{}, nil, err
	}
	if err := m.injectedErr(); err != nil && !cancelled {
		d.abortIncoming(dom, m)
		return libvirt.Domain{}, nil, err
	}
	if m.job.Phase == migration.PrepareResume && cancelled {
		// The recovery failed on the source: this half of the guest
		// waits for another one, as before.
		d.failPostcopy(dom, m)
		return libvirt.Domain{}, nil, compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "post-copy recovery of domain '%s' was cancelled: it stays here, waiting for another --postcopy-resume migration", dom.name)
	}
	if cancelled {
		d.abortIncoming(dom, m)
		// What libvirt answers: the domain it would have returned is gone.
		return libvirt.Domain{}, nil, compat.Errorf(libvirt.ErrNoDomain, compat.FromNone, "no domain with matching uuid '%s' (%s)", formatUUID(dom.uuid), dom.name)
	}
	offline := m.job.Flags&uint64(migparams.Offline) != 0
	var postcopy bool
	if !offline {
		mon, err := dom.monitor()
		if err == nil {
			postcopy, err = waitIncoming(ctx, mon, incomingTimeout, m.job.Flags&uint64(migparams.Postcopy) != 0)
		}
		if err != nil {
			d.abortIncoming(dom, m)
			return libvirt.Domain{}, nil, err
		}
	}
	sw.lap("incoming complete")
	if postcopy {
		if err := d.finishPostcopy(dom, m); err != nil {
			return libvirt.Domain{}, nil, err
		}
		sw.lap("post-copy complete")
	} else if err := d.advance(dom, m, migration.Finish3); err != nil {
		d.abortIncoming(dom, m)
		return libvirt.Domain{}, nil, err
	}
	if migparams.Flags(flags)&migparams.PersistDest != 0 {
		if err := d.persistIncoming(dom, m, cookie); err != nil {
			if !postcopy {
				d.abortIncoming(dom, m)
				return libvirt.Domain{}, nil, err
			}
			// The guest runs only here now: it must not be lost for
			// want of a definition file.
			d.log.Error("make the post-copy migrated domain persistent", "domain", dom.name, "err", err)
		}
	}
	if !offline {
		mon, err := dom.monitor()
		if err != nil {
			d.abortIncoming(dom, m)
			return libvirt.Domain{}, nil, err
		}
		d.stopServingStorage(ctx, dom, m, mon)
		if postcopy {
			// Resumed at the switch, complete now: libvirt reports the
			// end of a post-copy migration as resumed (migrated).
			dom.setState(libvirt.DomainRunning, int32(libvirt.DomainRunningMigrated))
			d.emitLifecycle(dom.ref(), libvirt.DomainEventResumed, int32(libvirt.DomainEventResumedMigrated))
		} else if migparams.Flags(flags)&migparams.Paused == 0 {
			if err := mon.Cont(ctx); err != nil {
				d.abortIncoming(dom, m)
				return libvirt.Domain{}, nil, fmt.Errorf("resume migrated guest: %w", err)
			}
			dom.setState(libvirt.DomainRunning, int32(libvirt.DomainRunningMigrated))
			sw.lap("cont")
			d.emitLifecycle(dom.ref(), libvirt.DomainEventResumed, int32(libvirt.DomainEventResumedMigrated))
		} else {
			dom.setState(libvirt.DomainPaused, int32(libvirt.DomainPausedUser))
			d.emitLifecycle(dom.ref(), libvirt.DomainEventSuspended, int32(libvirt.DomainEventSuspendedPaused))
		}
		d.resetMigrationSettings(ctx, dom, mon)
		sw.lap("reset settings")
	}
	out := migcookie.New(d.identity(dom))
	out.Govirtd = &migcookie.Extension{URI: d.opts.SelfURI}
	if cookie != nil && cookie.Stats != nil {
		now := uint64(time.Now().UnixMilli())
		out.Stats = cookie.Stats.AtDestination(now, now)
		dom.mu.Lock()
		dom.completed = &completedJob{stats: jobStatsFromCookie(out.Stats, jobOperationMigrationIn)}
		dom.mu.Unlock()
	}
	data, err := out.Marshal()
	if err != nil {
		return libvirt.Domain{}, nil, err
	}
	sw.lap("cookie")
	ref := dom.ref()
	d.releaseStorage(m, false)
	d.endMigJob(dom, m)
	sw.lap("end job")
	if err := d.fire("finish-end", dom); err != nil {
		return libvirt.Domain{}, nil, err
	}
	return ref, data, nil
}

// finishPostcopy is Finish once QEMU switched to post-copy: the guest is
// resumed here at once (its missing pages arrive on demand), then the
// rest of the transfer is awaited. From the switch on the guest is never
// killed here: if the connection breaks the migration becomes
// postcopy_failed, the guest stays (running, post-copy failed), and
// Finish fails with libvirt's "failed in post-copy phase".
func (d *Driver) finishPostcopy(dom *domain, m *migState) error {
	ctx := d.ctx
	mon, err := dom.monitor()
	if err != nil {
		return err
	}
	dom.mu.Lock()
	m.postcopy = true
	recovery := m.job.Phase == migration.PrepareResume
	dom.mu.Unlock()
	next := migration.Finish3
	if recovery {
		// The guest has been running here since the first Finish.
		next = migration.FinishResume
	} else {
		if err := mon.Cont(ctx); err != nil {
			// Not resumed: the guest state is split, so it is kept,
			// paused, for a recovery rather than killed.
			d.failPostcopy(dom, m)
			return fmt.Errorf("resume post-copy migrated guest: %w", err)
		}
		dom.setState(libvirt.DomainRunning, int32(libvirt.DomainRunningPostcopy))
		d.saveStatus(dom)
		d.emitLifecycle(dom.ref(), libvirt.DomainEventResumed, int32(libvirt.DomainEventResumedPostcopy))
	}
	if err := d.waitPostcopy(ctx, dom, m, mon, "migration in"); err != nil {
		d.failPostcopy(dom, m)
		return err
	}
	return d.advance(dom, m, next)
}

// prepareResume is Prepare of a post-copy recovery: the domain's half
// waiting here (postcopy_failed) listens again (migrate-recover) on a
// fresh port, for the source's resumed stream.
func (d *Driver) prepareResume(ctx context.Context, name string, uuid libvirt.UUID, params *migparams.Params, flags uint32) ([]byte, string, error) {
	d.mu.RLock()
	dom := d.byUUID[uuid]
	d.mu.RUnlock()
	if dom == nil {
		return nil, "", errNoDomainName(name)
	}
	m := dom.migJob(migration.Destination)
	// The phase alone: this QEMU may not answer in-band commands now.
	if m == nil || m.job.Phase != migration.PostcopyFailed {
		return nil, "", errNoFailedPostcopy(dom.name)
	}
	release, err := dom.job.acquire(ctx, "migration in")
	if err != nil {
		return nil, "", err
	}
	dom.mu.Lock()
	m.release, m.params = release, params
	m.job.Flags = uint64(flags)
	m.job.ConnID = driver.ConnID(ctx)
	dom.mu.Unlock()
	fail := func(err error) ([]byte, string, error) {
		d.releaseMigrationPort(m.incomingPort)
		m.incomingPort = 0
		d.failPostcopy(dom, m)
		return nil, "", err
	}
	if err := d.advance(dom, m, migration.PrepareResume); err != nil {
		return fail(err)
	}
	port, err := d.reserveMigrationPort(params)
	if err != nil {
		return fail(err)
	}
	m.incomingPort = port
	mon, err := dom.monitor()
	if err != nil {
		return fail(err)
	}
	if err := mon.MigrateRecover(ctx, "tcp:"+net.JoinHostPort(d.migrationListenAddress(params), strconv.Itoa(port))); err != nil {
		return fail(compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "migration in job: %v", err))
	}
	uri, err := d.prepareURIOut(params, port)
	if err != nil {
		return fail(err)
	}
	out := migcookie.New(d.identity(dom))
	out.Govirtd = &migcookie.Extension{URI: d.opts.SelfURI}
	data, err := out.Marshal()
	if err != nil {
		return fail(err)
	}
	d.log.Info("post-copy recovery: listening again", "domain", dom.name, "uri", uri)
	return data, uri, nil
}

// failPostcopy records a post-copy migration that broke: the job goes to
// postcopy_failed and lets go of the domain's job lock, so the operator
// can still destroy the guest, while a --postcopy-resume migration finds
// the job again. The domain's state (post-copy failed) comes from QEMU's
// postcopy-paused event.
func (d *Driver) failPostcopy(dom *domain, m *migState) {
	if err := d.advance(dom, m, migration.PostcopyFailed); err != nil {
		d.log.Error("record failed post-copy migration", "domain", dom.name, "phase", string(m.job.Phase), "err", err)
	}
	dom.mu.Lock()
	m.job.ConnID = 0
	dom.mu.Unlock()
	releaseJobLock(dom, m)
	d.log.Warn("post-copy migration failed: the guest is kept, waiting for a --postcopy-resume migration", "domain", dom.name, "role", string(m.job.Role))
}

// persistIncoming makes the migrated domain persistent here (--persistent):
// from the definition the source sent in its cookie, or the live one.
func (d *Driver) persistIncoming(dom *domain, m *migState, cookie *migcookie.Cookie) error {
	dom.mu.Lock()
	def := dom.live
	dom.mu.Unlock()
	if def == nil {
		def = m.def // offline: nothing runs; the prepared definition
	}
	if cookie != nil && cookie.Persistent != nil {
		def = cookie.Persistent
	}
	if m.params.PersistXML != "" {
		p, err := domainxml.Parse(m.params.PersistXML)
		if err != nil {
			return err
		}
		def = p
	}
	if def == nil {
		return compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "no definition to make the migrated domain persistent")
	}
	inactive, err := cloneDef(def)
	if err != nil {
		return err
	}
	domainxml.StripLive(inactive)
	inactive.Name = dom.name
	text, err := domainxml.Format(inactive, domainxml.FormatOptions{Inactive: true, Secure: true})
	if err != nil {
		return err
	}
	if err := d.store.SaveDefinition(dom.name, text); err != nil {
		return compat.Errorf(libvirt.ErrMigratePersistFailed, compat.FromQEMU, "%v", err)
	}
	dom.mu.Lock()
	detail := libvirt.DomainEventDefinedUpdated
	if !dom.persistent {
		detail = libvirt.DomainEventDefinedAdded
	}
	dom.def = inactive
	dom.persistent = true
	dom.mu.Unlock()
	d.emitLifecycle(dom.ref(), libvirt.DomainEventDefined, int32(detail))
	return nil
}

// abortIncoming kills the incoming QEMU and forgets the domain if it was
// created for the migration.
func (d *Driver) abortIncoming(dom *domain, m *migState) {
	if dom.active() {
		if err := d.stop(d.ctx, dom, stopCause{reason: libvirt.DomainShutoffFailed, detail: libvirt.DomainEventStoppedFailed}, time.Second); err != nil {
			d.log.Error("kill incoming QEMU", "domain", dom.name, "err", err)
		}
	}
	// The images this migration created go with the guest that failed
	// to arrive; images that were here before stay.
	d.releaseStorage(m, !dom.active())
	d.endMigJob(dom, m)
	dom.mu.Lock()
	persistent := dom.persistent
	dom.mu.Unlock()
	if !persistent {
		d.remove(dom)
	}
}

// incomingDied ends the incoming migration of a QEMU that died on its own
// (a failed TLS handshake or a stream QEMU could not load makes it exit):
// its job, port and created images go now, since Finish will not find the
// domain, and the error is kept for Finish to report.
func (d *Driver) incomingDied(dom *domain, proc *process.Process) {
	dom.mu.Lock()
	m := dom.mig
	dom.mu.Unlock()
	if m == nil || m.job.Role != migration.Destination {
		return
	}
	err := compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "migration in job: qemu unexpectedly closed the monitor (vm='%s'): %s",
		dom.name, lastLogLines(d.store.LogPath(dom.name), proc.Err()))
	d.incomingErrors.keep(dom.name, err)
	d.releaseMigrationPort(m.incomingPort)
	d.releaseStorage(m, true)
	d.endMigJob(dom, m)
}

// incomingErrors keeps, for a while, why incoming migrations failed,
// by domain name (libvirt's qemuMigrationDstErrorSave).
type incomingErrors struct {
	mu   sync.Mutex
	errs map[string]keptError
}

type keptError struct {
	err  error
	when time.Time
}

// incomingErrorTTL bounds how long an error waits for its Finish.
const incomingErrorTTL = 5 * time.Minute

func (e *incomingErrors) keep(name string, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.errs == nil {
		e.errs = map[string]keptError{}
	}
	for n, k := range e.errs {
		if time.Since(k.when) > incomingErrorTTL {
			delete(e.errs, n)
		}
	}
	e.errs[name] = keptError{err, time.Now()}
}

func (e *incomingErrors) take(name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	k, ok := e.errs[name]
	delete(e.errs, name)
	if !ok || time.Since(k.when) > incomingErrorTTL {
		return nil
	}
	return k.err
}
