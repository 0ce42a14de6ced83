package qemu

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver/qemu/domainxml"
	"github.com/govirtd/govirtd/driver/qemu/migration"
	"github.com/govirtd/govirtd/driver/qemu/process"
	"github.com/govirtd/govirtd/driver/qemu/qemucmd"
	"github.com/govirtd/govirtd/driver/qemu/qmp"
	"github.com/govirtd/govirtd/driver/qemu/store"
	"github.com/govirtd/govirtd/driver/qemu/swtpm"
)

// Timeouts of process management.
var (
	monitorTimeout = 30 * time.Second // QEMU start to QMP ready
	killGrace      = 10 * time.Second // SIGTERM to SIGKILL, as libvirt's destroy
)

// startOptions say how a domain is started.
type startOptions struct {
	paused   bool   // leave the CPUs stopped (VIR_DOMAIN_START_PAUSED)
	incoming string // "defer": a migration destination waiting for its stream
	reason   libvirt.DomainRunningReason
	// quiet leaves the started (and suspended) events to the caller,
	// which reports them with its own details (a snapshot revert).
	quiet bool
}

// cloneDef deep-copies a definition through its XML form (libvirtxml has no
// copy of its own), so the live definition never aliases the persistent one.
func cloneDef(def *libvirtxml.Domain) (*libvirtxml.Domain, error) {
	s, err := def.Marshal()
	if err != nil {
		return nil, err
	}
	var c libvirtxml.Domain
	if err := c.Unmarshal(s); err != nil {
		return nil, err
	}
	return &c, nil
}

// start launches QEMU for dom from def. The caller holds dom's job. On
// failure nothing is left running and the domain is shut off again.
func (d *Driver) start(ctx context.Context, dom *domain, def *libvirtxml.Domain, o startOptions) (err error) {
	if dom.active() {
		return errAlreadyRunning()
	}
	live, err := cloneDef(def)
	if err != nil {
		return fmt.Errorf("copy definition: %w", err)
	}
	qemucmd.AssignAliases(live)
	id := d.lastID.Add(1)
	runDir := d.store.RunDir(id, dom.name)
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	// Runtime choices libvirt records in the live definition: display
	// ports, channel socket paths, the (absent) backing chains.
	ports := &portReservation{alloc: d.displayPorts}
	undo = append(undo, ports.releaseAll)
	channelDir := d.store.ChannelDir(id, dom.name)
	rt := domainxml.Runtime{
		ChannelDir:   channelDir,
		VNCListen:    d.qconf.VNCListen,
		SpiceListen:  d.qconf.SpiceListen,
		BackingChain: domainxml.BackingChain,
	}
	if d.opts.Volumes != nil {
		rt.ResolveVolume = func(pool, vol string) (domainxml.VolumeSource, error) {
			src, err := d.opts.Volumes.ResolveVolume(ctx, pool, vol)
			return domainxml.VolumeSource{Path: src.Path, Type: src.Type}, err
		}
	}
	if err := domainxml.PrepareLive(live, rt, ports); err != nil {
		return err
	}
	undo = append(undo, func() { os.RemoveAll(channelDir) })
	if err := os.MkdirAll(runDir, 0o700); err != nil {
		return fmt.Errorf("create runtime dir: %w", err)
	}
	undo = append(undo, func() { os.RemoveAll(runDir) })
	if err := writeMasterKey(filepath.Join(runDir, "master-key.aes")); err != nil {
		return err
	}
	// An emulated TPM's swtpm runs before QEMU, which connects to it.
	var tpmSocket string
	if tpms := live.Devices.TPMs; len(tpms) > 0 && tpms[0].Backend != nil && tpms[0].Backend.Emulator != nil {
		inst := swtpm.NewInstance(d.store.SwtpmRoot(), live.UUID, dom.name, runDir, d.store.LogDir(), tpms[0].Backend.Emulator.Version)
		if err := inst.Prepare(ctx, o.incoming != ""); err != nil {
			return compat.Errorf(libvirt.ErrInternalError, compat.FromQEMU, "%v", err)
		}
		tpmProc, err := inst.Start(ctx)
		if err != nil {
			return compat.Errorf(libvirt.ErrInternalError, compat.FromQEMU, "%v", err)
		}
		undo = append(undo, func() { tpmProc.Kill() })
		tpmSocket = inst.Socket
	}
	// The monitor socket is created here and handed to QEMU as a listening
	// fd, as libvirt does: it exists before QEMU runs, so there is no race
	// waiting for QEMU to create it, and it can be reconnected after a
	// daemon restart.
	monPath := filepath.Join(runDir, "monitor.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: monPath, Net: "unix"})
	if err != nil {
		return fmt.Errorf("monitor socket: %w", err)
	}
	ln.SetUnlinkOnClose(false)
	lnFile, err := ln.File()
	ln.Close()
	if err != nil {
		return fmt.Errorf("monitor socket: %w", err)
	}
	defer lnFile.Close()

	// Tap devices for network, bridge and ethernet NICs (netif.go).
	nics, err := d.openTaps(ctx, live)
	if err != nil {
		return err
	}
	defer nics.close()

	cmd, err := qemucmd.Build(live, qemucmd.Options{
		DomainDir: runDir,
		MonitorFD: 3,
		Incoming:  o.incoming,
		KVM:       live.Type == "kvm",
		TPMSocket: tpmSocket,
	})
	if err != nil {
		return err
	}
	// Serial log files are opened here and passed as fds, as libvirt does.
	fixed := map[int]*os.File{3: lnFile}
	if err := nics.place(cmd, fixed); err != nil {
		return err
	}
	files, closeFiles, err := cmd.ExtraFiles(fixed)
	if err != nil {
		return compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "%v", err)
	}
	sw := d.stopwatch("qemu start", dom.name)
	defer sw.done()
	sw.lap("setup")
	proc, err := process.Start(process.Spec{
		Path: cmd.Path, Args: cmd.Args, Env: cmd.Env, Dir: runDir,
		ExtraFiles: files,
		LogPath:    d.store.LogPath(dom.name),
	})
	closeFiles()
	if err != nil {
		return compat.Errorf(libvirt.ErrInternalError, compat.FromQEMU, "process exited while connecting to monitor: %v", err)
	}
	undo = append(undo, func() { proc.Kill(context.Background(), time.Second) })

	sw.lap("exec")
	mctx, cancel := context.WithTimeout(ctx, monitorTimeout)
	defer cancel()
	mon, err := dialMonitor(mctx, monPath, proc)
	if err != nil {
		return compat.Errorf(libvirt.ErrInternalError, compat.FromQEMU, "qemu unexpectedly closed the monitor: %s", lastLogLines(d.store.LogPath(dom.name), err))
	}
	sw.lap("monitor")
	undo = append(undo, func() { mon.Close() })
	events := mon.Subscribe(d.ctx)
	// QEMU reports migration progress as events only when asked; libvirt
	// turns this on for every QEMU it starts.
	if err := mon.MigrateSetCapabilities(ctx, []qmp.MigrationCapability{{Capability: "events", State: true}}); err != nil {
		return fmt.Errorf("enable migration events: %w", err)
	}
	freshCaps := map[string]bool{"events": true} // everything else is off in a new QEMU

	sw.lap("events on")
	if err := fillPTYPaths(ctx, mon, live); err != nil {
		return err
	}
	sw.lap("chardevs")
	if err := applyAffinity(ctx, mon, proc.PID(), live); err != nil {
		return err
	}
	// Not fatal, as with libvirt: the guest runs without statistics.
	if err := setupBalloon(ctx, mon, live); err != nil {
		d.log.Warn("cannot set the balloon statistics period", "domain", dom.name, "err", err)
	}

	dom.mu.Lock()
	dom.live = live
	dom.id = id
	dom.proc = proc
	dom.mon = mon
	dom.runDir = runDir
	dom.stopReason = nil
	dom.fakeReboot = false
	dom.taint = 0
	dom.stopped = make(chan struct{})
	dom.migCaps = freshCaps
	dom.state, dom.reason = libvirt.DomainPaused, int32(libvirt.DomainPausedStartingUp)
	dom.mu.Unlock()
	undo = append(undo, func() {
		dom.mu.Lock()
		dom.live, dom.id, dom.proc, dom.mon, dom.runDir = nil, -1, nil, nil, ""
		dom.state, dom.reason = libvirt.DomainShutoff, int32(libvirt.DomainShutoffFailed)
		dom.mu.Unlock()
	})
	go d.watch(dom, proc, mon, events)

	if o.incoming == "" && !o.paused {
		if err := mon.Cont(ctx); err != nil {
			return fmt.Errorf("start CPUs: %w", err)
		}
		dom.setState(libvirt.DomainRunning, int32(o.reason))
	} else if o.incoming == "" {
		dom.setState(libvirt.DomainPaused, int32(libvirt.DomainPausedUser))
	}
	if err := d.saveStatus(dom); err != nil {
		return err
	}
	sw.lap("save status")
	if o.incoming == "" && !o.quiet {
		ref := dom.ref()
		d.emitLifecycle(ref, libvirt.DomainEventStarted, int32(libvirt.DomainEventStartedBooted))
		if o.paused {
			d.emitLifecycle(ref, libvirt.DomainEventSuspended, int32(libvirt.DomainEventSuspendedPaused))
		}
	}
	return nil
}

// dialMonitor connects to QMP, giving up early if QEMU exits.
func dialMonitor(ctx context.Context, path string, proc *process.Process) (*qmp.Monitor, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-proc.Exited():
			cancel()
		case <-ctx.Done():
		}
	}()
	mon, err := qmp.Dial(ctx, path)
	if err != nil && !proc.Running() {
		return nil, fmt.Errorf("QEMU exited during start-up: %v", proc.Err())
	}
	return mon, err
}

// lastLogLines returns the tail of a QEMU log: its error message is what a
// user needs when a start fails.
func lastLogLines(path string, cause error) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return cause.Error()
	}
	ls := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(ls) > 3 {
		ls = ls[len(ls)-3:]
	}
	return strings.Join(ls, "\n")
}

func writeMasterKey(path string) error {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	return os.WriteFile(path, key, 0o600)
}

// fillPTYPaths records the host side of pty chardevs in the live
// definition, as libvirt shows them (<source path='/dev/pts/N'/>), so
// `virsh console` and the serial logs can find them.
func fillPTYPaths(ctx context.Context, mon *qmp.Monitor, live *libvirtxml.Domain) error {
	if live.Devices == nil {
		return nil
	}
	chardevs, err := mon.QueryChardev(ctx)
	if err != nil {
		return fmt.Errorf("query chardevs: %w", err)
	}
	pty := map[string]string{}
	for _, c := range chardevs {
		if p, ok := strings.CutPrefix(c.Filename, "pty:"); ok {
			pty[c.Label] = p
		}
	}
	set := func(alias string, src **libvirtxml.DomainChardevSource, tty *string) {
		p, ok := pty["char"+alias]
		if !ok || *src == nil || (*src).Pty == nil {
			return
		}
		(*src).Pty.Path = p
		if tty != nil {
			*tty = p
		}
	}
	for i := range live.Devices.Serials {
		s := &live.Devices.Serials[i]
		if s.Alias != nil {
			set(s.Alias.Name, &s.Source, nil)
		}
	}
	for i := range live.Devices.Consoles {
		c := &live.Devices.Consoles[i]
		// A console that mirrors a serial port shares its chardev.
		alias := ""
		if c.Alias != nil {
			alias = c.Alias.Name
		}
		if strings.HasPrefix(alias, "console") && len(live.Devices.Serials) > 0 && live.Devices.Serials[0].Alias != nil {
			alias = live.Devices.Serials[0].Alias.Name
		}
		set(alias, &c.Source, &c.TTY)
	}
	return nil
}

// saveStatus persists what a restarted daemon needs to manage the running
// domain again.
func (d *Driver) saveStatus(dom *domain) error {
	dom.mu.Lock()
	defer dom.mu.Unlock()
	if dom.live == nil || dom.proc == nil {
		return nil
	}
	// The live definition is immutable once installed: format it once,
	// not on every step of a migration.
	if dom.liveXMLFor != dom.live {
		x, err := dom.live.Marshal()
		if err != nil {
			return err
		}
		dom.liveXMLFor, dom.liveXML = dom.live, x
	}
	var job []byte
	if dom.mig != nil {
		var err error
		if job, err = dom.mig.job.Marshal(); err != nil {
			return err
		}
	}
	return d.store.SaveStatus(&store.Status{
		Job:  job,
		Name: dom.name, UUID: formatUUID(dom.uuid), ID: dom.id,
		PID: dom.proc.PID(), StartTime: dom.proc.StartTime(),
		Monitor: filepath.Join(dom.runDir, "monitor.sock"), RunDir: dom.runDir,
		State: int32(dom.state), Reason: dom.reason, Persistent: dom.persistent,
		LiveXML: dom.liveXML,
	})
}

// watch follows one QEMU process: its QMP events keep the domain's state
// true, and its exit is handled once, whoever caused it.
func (d *Driver) watch(dom *domain, proc *process.Process, mon *qmp.Monitor, events <-chan qmp.Event) {
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			d.log.Debug("qemu event", "domain", dom.name, "event", ev.Name, "data", ev.Data)
			d.handleEvent(dom, mon, ev)
		case <-proc.Exited():
			// Drain what QEMU said before it went (a SHUTDOWN event tells a
			// guest poweroff from a crash).
			drain := time.After(200 * time.Millisecond)
		drainLoop:
			for events != nil {
				select {
				case ev, ok := <-events:
					if !ok {
						break drainLoop
					}
					d.handleEvent(dom, mon, ev)
				case <-drain:
					break drainLoop
				}
			}
			d.handleExit(dom, proc)
			return
		case <-d.ctx.Done():
			return
		}
	}
}

// handleEvent applies one QMP event to the domain's state.
func (d *Driver) handleEvent(dom *domain, mon *qmp.Monitor, ev qmp.Event) {
	switch ev.Name {
	case "STOP":
		dom.mu.Lock()
		changed := dom.state == libvirt.DomainRunning
		// QEMU pauses an outgoing guest itself for the last pass: that is
		// "paused (migration)", reported suspended/migrated, as libvirt.
		migrating := dom.mig != nil && dom.mig.job.Role == migration.Source
		reason, detail := libvirt.DomainPausedUser, libvirt.DomainEventSuspendedPaused
		if migrating {
			reason, detail = libvirt.DomainPausedMigration, libvirt.DomainEventSuspendedMigrated
		}
		if changed {
			dom.state, dom.reason = libvirt.DomainPaused, int32(reason)
		}
		dom.mu.Unlock()
		if changed {
			d.saveStatus(dom)
			d.emitLifecycle(dom.ref(), libvirt.DomainEventSuspended, int32(detail))
		}
	case "RESUME":
		dom.mu.Lock()
		// Migration code reports its own resumes (resumed/migrated).
		changed := dom.state == libvirt.DomainPaused && dom.reason != int32(libvirt.DomainPausedStartingUp) && dom.mig == nil
		if changed {
			dom.state, dom.reason = libvirt.DomainRunning, int32(libvirt.DomainRunningUnpaused)
		}
		dom.mu.Unlock()
		if changed {
			d.saveStatus(dom)
			d.emitLifecycle(dom.ref(), libvirt.DomainEventResumed, int32(libvirt.DomainEventResumedUnpaused))
		}
	case "MIGRATION":
		status, _ := ev.Data["status"].(string)
		d.postcopyStatus(dom, status)
	case "RESET":
		d.emit(eventReboot(dom.ref()))
	case "SHUTDOWN":
		d.handleGuestShutdown(dom, mon, ev)
	case qmp.EventBalloonChange:
		d.balloonChanged(dom, ev)
	case qmp.EventBlockIOError:
		d.blockIOError(dom, ev)
	case qmp.EventDeviceDeleted:
		d.deviceDeleted(dom, mon, ev)
	}
}

// handleGuestShutdown: with -no-shutdown QEMU stops instead of exiting when
// the guest powers off, and the daemon decides: a fake reboot resets and
// resumes the guest; otherwise on_poweroff=destroy ends the process.
func (d *Driver) handleGuestShutdown(dom *domain, mon *qmp.Monitor, ev qmp.Event) {
	guest, _ := ev.Data["guest"].(bool)
	dom.mu.Lock()
	fake := dom.fakeReboot
	dom.fakeReboot = false
	proc := dom.proc
	if !fake && dom.stopReason == nil {
		dom.stopReason = &stopCause{reason: libvirt.DomainShutoffShutdown, detail: libvirt.DomainEventStoppedShutdown}
	}
	dom.state, dom.reason = libvirt.DomainShutdown, int32(libvirt.DomainShutdownUser)
	dom.mu.Unlock()
	detail := libvirt.DomainEventShutdownHost
	if guest {
		detail = libvirt.DomainEventShutdownGuest
	}
	d.emitLifecycle(dom.ref(), libvirt.DomainEventShutdown, int32(detail))
	if fake {
		ctx, cancel := context.WithTimeout(d.ctx, 10*time.Second)
		defer cancel()
		if err := mon.SystemReset(ctx); err == nil {
			if err := mon.Cont(ctx); err == nil {
				dom.setState(libvirt.DomainRunning, int32(libvirt.DomainRunningBooted))
				d.emit(eventReboot(dom.ref()))
				return
			}
		}
		dom.mu.Lock()
		dom.stopReason = &stopCause{reason: libvirt.DomainShutoffShutdown, detail: libvirt.DomainEventStoppedShutdown}
		dom.mu.Unlock()
	}
	if proc != nil {
		go proc.Kill(d.ctx, killGrace)
	}
}

// handleExit cleans up after a QEMU process, whatever ended it.
func (d *Driver) handleExit(dom *domain, proc *process.Process) {
	dom.mu.Lock()
	if dom.proc != proc {
		dom.mu.Unlock()
		return
	}
	cause := dom.stopReason
	if cause == nil {
		cause = &stopCause{reason: libvirt.DomainShutoffCrashed, detail: libvirt.DomainEventStoppedFailed}
	}
	ref := libvirt.Domain{Name: dom.name, UUID: dom.uuid, ID: -1}
	if dom.mon != nil {
		dom.mon.Close()
	}
	runDir := dom.runDir
	for _, p := range autoDisplayPorts(dom.live) {
		d.displayPorts.release(p)
	}
	channelDir := d.store.ChannelDir(dom.id, dom.name)
	dom.live, dom.proc, dom.mon, dom.runDir, dom.id, dom.migCaps = nil, nil, nil, "", -1, nil
	dom.liveXMLFor, dom.liveXML = nil, ""
	dom.state, dom.reason = libvirt.DomainShutoff, int32(cause.reason)
	dom.stopReason = nil
	persistent := dom.persistent
	stopped := dom.stopped
	dom.mu.Unlock()

	if err := d.store.RemoveStatus(dom.name); err != nil {
		d.log.Error("remove domain status", "domain", dom.name, "err", err)
	}
	os.RemoveAll(runDir)
	os.RemoveAll(channelDir)
	if cause.reason == libvirt.DomainShutoffCrashed {
		d.log.Warn("QEMU exited unexpectedly", "domain", dom.name, "err", proc.Err())
		d.incomingDied(dom, proc)
	}
	if !persistent {
		d.remove(dom)
		// A transient domain's snapshots go with it (qemuDomainRemoveInactive).
		if err := d.snaps.RemoveAll(ref.Name); err != nil {
			d.log.Warn("remove snapshot metadata", "domain", ref.Name, "err", err)
		}
	}
	d.emitLifecycle(ref, libvirt.DomainEventStopped, int32(cause.detail))
	if stopped != nil {
		close(stopped)
	}
}

// stop ends a running domain's QEMU and waits until its exit is handled.
// The caller holds dom's job.
func (d *Driver) stop(ctx context.Context, dom *domain, cause stopCause, grace time.Duration) error {
	dom.mu.Lock()
	proc, stopped := dom.proc, dom.stopped
	if proc == nil {
		dom.mu.Unlock()
		return errNotRunning()
	}
	dom.stopReason = &cause
	dom.mu.Unlock()
	if err := proc.Kill(ctx, grace); err != nil {
		return fmt.Errorf("kill QEMU: %w", err)
	}
	select {
	case <-stopped:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// monitor returns the QMP monitor of a running domain.
func (dom *domain) monitor() (*qmp.Monitor, error) {
	dom.mu.Lock()
	defer dom.mu.Unlock()
	if dom.mon == nil {
		return nil, errNotRunning()
	}
	return dom.mon, nil
}
