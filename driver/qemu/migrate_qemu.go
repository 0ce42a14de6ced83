package qemu

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver"
	"github.com/govirtd/govirtd/driver/qemu/qmp"
)

// The QMP side of a migration, in the order libvirt 9.0 drives QEMU 7.2
// (captured sequences: protocol facts §7).

// unlimitedBandwidth is what libvirt sets for "no limit": INT64_MAX rounded
// down to whole MiB.
const unlimitedBandwidth = int64(9223372036853727232)

// sourceCaps are the migration capabilities the source sets: QEMU pauses
// before the switch-over so the daemon decides the last step, and the
// return path lets the destination report failure to the source.
func sourceCaps(autoConverge, tunnelled bool) []qmp.MigrationCapability {
	return []qmp.MigrationCapability{
		{Capability: "xbzrle"},
		{Capability: "auto-converge", State: autoConverge},
		{Capability: "rdma-pin-all"},
		{Capability: "postcopy-ram"},
		{Capability: "compress"},
		{Capability: "pause-before-switchover", State: true},
		{Capability: "late-block-activate"},
		{Capability: "multifd"},
		{Capability: "dirty-bitmaps"},
		{Capability: "return-path", State: !tunnelled},
		{Capability: "zero-copy-send"},
	}
}

// destCaps are the destination's: block devices are activated only when
// the guest resumes, so the source keeps the disk until then.
func destCaps(tunnelled bool) []qmp.MigrationCapability {
	return []qmp.MigrationCapability{
		{Capability: "xbzrle"},
		{Capability: "auto-converge"},
		{Capability: "rdma-pin-all"},
		{Capability: "postcopy-ram"},
		{Capability: "compress"},
		{Capability: "pause-before-switchover"},
		{Capability: "late-block-activate", State: true},
		{Capability: "multifd"},
		{Capability: "dirty-bitmaps"},
		{Capability: "return-path", State: !tunnelled},
		{Capability: "zero-copy-send"},
	}
}

// allCapsOff resets capabilities after a migration, as libvirt does
// (migration events stay on).
func allCapsOff() []qmp.MigrationCapability {
	caps := sourceCaps(false, true)
	for i := range caps {
		caps[i].State = false
	}
	return caps
}

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
	if err := d.setMigrationCaps(ctx, dom, mon, sourceCaps(r.autoConverge, r.tunnelled)); err != nil {
		return qmp.MigrationInfo{}, fmt.Errorf("set migration capabilities: %w", err)
	}
	empty := ""
	bw := unlimitedBandwidth
	if r.bandwidthMiB > 0 {
		bw = int64(r.bandwidthMiB) << 20
	}
	p := qmp.MigrationParameters{TLSCreds: &empty, TLSHostname: &empty, MaxBandwidth: &bw,
		CPUThrottleInitial: r.acInitial, CPUThrottleIncrement: r.acIncrement, DowntimeLimit: r.downtimeLimit}
	if err := mon.MigrateSetParameters(ctx, p); err != nil {
		return qmp.MigrationInfo{}, fmt.Errorf("set migration parameters: %w", err)
	}
	// Subscribe before starting, so no status event can be missed.
	evctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events := mon.Subscribe(evctx)
	qemuURI, err := connectMigrationStream(ctx, mon, uri)
	if err != nil {
		return qmp.MigrationInfo{}, err
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
			d.log.Debug("migration event", "domain", dom.name, "event", ev.Name, "data", ev.Data, "since_migrate", time.Since(started))
			switch ev.Name {
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
					return qmp.MigrationInfo{}, errMigrationAborted()
				}
			}
		case <-ctx.Done():
			mon.MigrateCancel(context.Background())
			return qmp.MigrationInfo{}, ctx.Err()
		}
	}
}

// setMigrationCaps brings QEMU's migration capabilities to caps, sending
// only those that differ from what this QEMU is known to have (the result is
// the same as sending the whole list, as libvirt does, minus QEMU's
// per-capability cost).
func (d *Driver) setMigrationCaps(ctx context.Context, dom *domain, mon *qmp.Monitor, caps []qmp.MigrationCapability) error {
	dom.mu.Lock()
	known := dom.migCaps
	dom.mu.Unlock()
	send := capsToSend(known, caps)
	if len(send) == 0 {
		return nil
	}
	err := mon.MigrateSetCapabilities(ctx, send)
	dom.mu.Lock()
	defer dom.mu.Unlock()
	if dom.mon != mon {
		return err // another QEMU by now
	}
	if err != nil {
		dom.migCaps = nil // QEMU may have applied part of it
		return err
	}
	dom.migCaps = applyCaps(dom.migCaps, send)
	return nil
}

// capsToSend is the part of want that differs from known (all of it when
// known is nil: unknown).
func capsToSend(known map[string]bool, want []qmp.MigrationCapability) []qmp.MigrationCapability {
	if known == nil {
		return want
	}
	var send []qmp.MigrationCapability
	for _, c := range want {
		if known[c.Capability] != c.State {
			send = append(send, c)
		}
	}
	return send
}

// applyCaps returns known after QEMU accepted sent. From an unknown state,
// only what was sent (and "events", which every QEMU gets at start) is known
// afterwards.
func applyCaps(known map[string]bool, sent []qmp.MigrationCapability) map[string]bool {
	next := make(map[string]bool, len(known)+len(sent))
	for k, v := range known {
		next[k] = v
	}
	if known == nil {
		next["events"] = true
	}
	for _, c := range sent {
		if c.State {
			next[c.Capability] = true
		} else {
			delete(next, c.Capability)
		}
	}
	return next
}

// migrationFDName is the name the source QEMU knows the stream's socket by.
const migrationFDName = "migrate"

// connectMigrationStream opens a tcp: migration URI itself and hands the
// connected socket to QEMU ("getfd" + "fd:migrate"), as libvirt does, and
// returns the URI to give QEMU's migrate command. The socket has Nagle's
// algorithm off (Go's default for TCP): QEMU's own connection leaves it on,
// and its last small writes before the switch-over then wait for the
// destination's delayed ACK (40 ms on Linux) while the guest is paused.
// Other URIs (unix:, the tunnel's) are QEMU's to open.
func connectMigrationStream(ctx context.Context, mon *qmp.Monitor, uri string) (string, error) {
	addr, ok := tcpMigrationAddr(uri)
	if !ok {
		return uri, nil
	}
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		return "", compat.Errorf(libvirt.ErrSystemError, compat.FromRPC, "unable to connect to server at '%s': %v", addr, unwrapSyscall(err))
	}
	defer conn.Close() // QEMU has its own copy once getfd returned
	f, err := conn.(*net.TCPConn).File()
	if err != nil {
		return "", fmt.Errorf("migration socket: %w", err)
	}
	defer f.Close()
	if err := mon.GetFD(ctx, migrationFDName, f); err != nil {
		return "", compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "migration out job: pass the migration socket: %v", err)
	}
	return "fd:" + migrationFDName, nil
}

// tcpMigrationAddr returns the HOST:PORT of a tcp: migration URI, in
// either form libvirt accepts: QEMU's "tcp:HOST:PORT" (what Prepare
// returns) and the URI form "tcp://HOST:PORT[/]" a user may pass with
// --migrateuri.
func tcpMigrationAddr(uri string) (string, bool) {
	rest, ok := strings.CutPrefix(uri, "tcp:")
	if !ok {
		return "", false
	}
	if hostPort, isURI := strings.CutPrefix(rest, "//"); isURI {
		hostPort, _, _ = strings.Cut(hostPort, "/")
		return hostPort, true
	}
	return rest, true
}

// unwrapSyscall reduces a dial error to its system error ("Connection
// refused"), as libvirt words it.
func unwrapSyscall(err error) error {
	var se *os.SyscallError
	if errors.As(err, &se) {
		return se.Err
	}
	return err
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
func (d *Driver) restoreSource(ctx context.Context, dom *domain, mon *qmp.Monitor) {
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
	d.resumeAfterMigration(ctx, dom, mon)
}

// resetMigrationSettings turns the migration capabilities off and restores
// the parameters read before the migration, as libvirt does.
func (d *Driver) resetMigrationSettings(ctx context.Context, dom *domain, mon *qmp.Monitor) {
	sw := d.stopwatch("reset migration settings", dom.name)
	defer sw.done()
	if err := d.setMigrationCaps(ctx, dom, mon, allCapsOff()); err != nil {
		d.log.Warn("reset migration capabilities", "domain", dom.name, "err", err)
	}
	sw.lap("capabilities")
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
	if err := mon.Cont(ctx); err != nil {
		d.log.Error("resume after failed migration", "domain", dom.name, "err", err)
		return
	}
	dom.setState(libvirt.DomainRunning, int32(libvirt.DomainRunningMigrationCanceled))
	d.saveStatus(dom)
	d.emitLifecycle(dom.ref(), libvirt.DomainEventResumed, int32(libvirt.DomainEventResumedMigrated))
}

// startIncoming prepares a freshly started destination QEMU (-incoming
// defer) and makes it listen for the stream.
func (d *Driver) startIncoming(ctx context.Context, dom *domain, mon *qmp.Monitor, listenURI string, tunnelled bool) error {
	sw := d.stopwatch("start incoming", dom.name)
	defer sw.done()
	if err := d.setMigrationCaps(ctx, dom, mon, destCaps(tunnelled)); err != nil {
		return fmt.Errorf("set migration capabilities: %w", err)
	}
	sw.lap("set capabilities")
	empty := ""
	if err := mon.MigrateSetParameters(ctx, qmp.MigrationParameters{TLSCreds: &empty, TLSHostname: &empty}); err != nil {
		return fmt.Errorf("set migration parameters: %w", err)
	}
	sw.lap("set parameters")
	defer sw.lap("migrate-incoming")
	if err := mon.MigrateIncoming(ctx, listenURI); err != nil {
		return compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "migration in job: %v", err)
	}
	return nil
}

// waitIncoming waits for the destination QEMU to have received the whole
// guest. In the normal flow it already has when Finish arrives.
func waitIncoming(ctx context.Context, mon *qmp.Monitor, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	events := mon.Subscribe(ctx)
	for {
		info, err := mon.QueryMigrate(ctx)
		if err != nil {
			return fmt.Errorf("query incoming migration: %w", err)
		}
		switch info.Status {
		case qmp.MigrationStatusCompleted:
			return nil
		case qmp.MigrationStatusFailed:
			return compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "migration in job: %s", orDefault(info.ErrorDesc, "unexpectedly failed"))
		case qmp.MigrationStatusCancelled:
			return compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "migration in job: canceled")
		}
		select {
		case _, ok := <-events:
			if !ok {
				if ctx.Err() != nil {
					return compat.Errorf(libvirt.ErrOperationTimeout, compat.FromQEMU, "incoming migration did not complete")
				}
				return compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "migration in job: QEMU went away")
			}
		case <-ctx.Done():
			return compat.Errorf(libvirt.ErrOperationTimeout, compat.FromQEMU, "incoming migration did not complete")
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
