package qemu

import (
	"context"
	"fmt"
	"os"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/compat/migparams"
	"github.com/govirtd/govirtd/driver"
	"github.com/govirtd/govirtd/driver/qemu/domainxml"
	"github.com/govirtd/govirtd/driver/qemu/qmp"
	"github.com/govirtd/govirtd/driver/qemu/savefile"
)

// virsh save / restore: the guest's state goes to a file in libvirt's
// save image format (savefile) as a QEMU migration to that file, and comes
// back as an incoming migration from it. The migration machinery is the
// one live migration uses (runSourceMigration, startIncoming,
// waitIncoming); only the transport differs: the file's descriptor, handed
// to QEMU with getfd, "fd:NAME" as the URI.

// Names QEMU knows the image's descriptor by (getfd).
const (
	saveFDName    = "libvirt-save"
	restoreFDName = "libvirt-restore"
)

// saveCookie is the save cookie libvirt writes into every image
// (qemuDomainSaveCookieFormat); it would carry the host-model CPU, which
// govirtd domains never have.
const saveCookie = "<cookie>\n</cookie>\n"

// Flags of save and restore (virDomainSaveRestoreFlags).
const (
	saveBypassCache = uint32(libvirt.DomainSaveBypassCache)
	saveRunning     = uint32(libvirt.DomainSaveRunning)
	savePaused      = uint32(libvirt.DomainSavePaused)
	saveResetNvram  = uint32(libvirt.DomainSaveResetNvram)
)

// checkSaveFlags refuses flags outside allowed, and --running with
// --paused, as libvirt does.
func checkSaveFlags(flags, allowed uint32) error {
	if flags&^allowed != 0 {
		return errUnsupportedFlags(flags)
	}
	if flags&saveRunning != 0 && flags&savePaused != 0 {
		return compat.Errorf(libvirt.ErrInvalidArg, compat.FromQEMU, "Flags 'VIR_DOMAIN_SAVE_RUNNING' and 'VIR_DOMAIN_SAVE_PAUSED' are mutually exclusive")
	}
	return nil
}

// runningAfter is the image's was_running as the flags change it.
func runningAfter(wasRunning bool, flags uint32) bool {
	switch {
	case flags&saveRunning != 0:
		return true
	case flags&savePaused != 0:
		return false
	}
	return wasRunning
}

// Save implements driver.DomainSaves.
func (d *Driver) Save(ctx context.Context, ref libvirt.Domain, path, xml string, flags uint32) error {
	if err := checkSaveFlags(flags, saveBypassCache|saveRunning|savePaused); err != nil {
		return err
	}
	dom, err := d.get(ref)
	if err != nil {
		return err
	}
	return withJob(ctx, dom, "remoteDispatchDomainSaveFlags", func() error {
		return d.saveTo(ctx, dom, path, xml, flags)
	})
}

// saveTo writes the running domain to an image at path and stops it
// ("shut off (saved)"). On failure the image is removed (if this save
// created the file) and the guest runs on as before. The caller holds
// dom's job.
func (d *Driver) saveTo(ctx context.Context, dom *domain, path, xml string, flags uint32) error {
	dom.mu.Lock()
	live, mon, state, reason := dom.live, dom.mon, dom.state, dom.reason
	dom.mu.Unlock()
	if live == nil || mon == nil {
		return errNotRunning()
	}
	text, err := d.saveImageXML(live, xml)
	if err != nil {
		return err
	}
	wasRunning := runningAfter(state == libvirt.DomainRunning, flags)
	// The image must hold one moment of the guest: stop its CPUs first,
	// as libvirt does ("paused (saving)" while the state is written).
	paused := false
	if state == libvirt.DomainRunning {
		dom.setState(libvirt.DomainPaused, int32(libvirt.DomainPausedSave))
		if err := mon.Stop(ctx); err != nil {
			dom.setState(state, reason)
			return fmt.Errorf("pause the guest to save it: %w", err)
		}
		paused = true
		d.emitLifecycle(dom.ref(), libvirt.DomainEventSuspended, int32(libvirt.DomainEventSuspendedPaused))
	}
	// Like libvirt, a failed save removes the file only if it made it.
	_, statErr := os.Lstat(path)
	created := os.IsNotExist(statErr)
	undo := func() {
		if created {
			os.Remove(path)
		}
		d.resetMigrationSettings(d.ctx, dom, mon)
		if paused {
			if err := mon.Cont(d.ctx); err != nil {
				d.log.Error("resume after a failed save", "domain", dom.name, "err", err)
				return
			}
			dom.setState(libvirt.DomainRunning, int32(libvirt.DomainRunningSaveCanceled))
			d.saveStatus(dom)
			d.emitLifecycle(dom.ref(), libvirt.DomainEventResumed, int32(libvirt.DomainEventResumedUnpaused))
		}
	}
	f, err := savefile.Create(path, text, saveCookie, wasRunning)
	if err != nil {
		undo()
		return err
	}
	started := time.Now()
	var info qmp.MigrationInfo
	err = mon.GetFD(ctx, saveFDName, f)
	if err == nil {
		// A file has no return path, and nobody waits on the other end:
		// the migration runs as a tunnelled one does (return-path off).
		info, err = d.runSourceMigration(ctx, dom, mon, "fd:"+saveFDName, sourceRun{tunnelled: true})
		if err == nil {
			err = f.Sync()
		}
	} else {
		err = compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "pass the save file to QEMU: %v", err)
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close %s: %w", path, cerr)
	}
	if err == nil {
		err = savefile.Finish(path)
	}
	if err != nil {
		undo()
		return err
	}
	d.log.Info("domain saved", "domain", dom.name, "path", path)
	// As libvirt: the save job's statistics, for the job-completed event
	// and virsh domjobinfo --completed, then the domain stops.
	stats := jobStatsFromQEMU(jobOperationSave, info, time.Since(started))
	stats.SaveDump = true
	dom.mu.Lock()
	dom.completed = &completedJob{stats: stats}
	dom.mu.Unlock()
	d.emit(driver.Event{ID: libvirt.DomainEventIDJobCompleted, Dom: dom.ref(), Params: stats.TypedParams()})
	return d.stop(ctx, dom, stopCause{reason: libvirt.DomainShutoffSaved, detail: libvirt.DomainEventStoppedSaved}, killGrace)
}

// saveImageXML is the definition an image carries: the running one in
// the form a live migration sends (so the restored QEMU has the same
// devices), or the caller's replacement, which must describe the same
// domain.
func (d *Driver) saveImageXML(live *libvirtxml.Domain, xml string) (string, error) {
	if xml == "" {
		return domainxml.Format(live, domainxml.FormatOptions{Secure: true, Migratable: true, ChannelDir: d.store.ChannelRoot(), ConfigListen: d.configListen()})
	}
	def, err := d.sameDomain(live, xml)
	if err != nil {
		return "", err
	}
	return domainxml.Format(def, domainxml.FormatOptions{Inactive: true, Secure: true})
}

// sameDomain parses a replacement definition for an image and checks it
// is the image's domain (libvirt checks the whole ABI; govirtd checks
// name and UUID, which is what decides where the guest lands).
func (d *Driver) sameDomain(old *libvirtxml.Domain, xml string) (*libvirtxml.Domain, error) {
	def, uuid, err := d.parseDefinition(xml)
	if err != nil {
		return nil, err
	}
	// In libvirt's order (virDomainDefCheckABIStability): UUID, then name.
	if oldUUID, err := parseUUID(old.UUID); err != nil || oldUUID != uuid {
		return nil, compat.Errorf(libvirt.ErrConfigUnsupported, compat.FromDomain, "Target domain uuid %s does not match source %s", formatUUID(uuid), old.UUID)
	}
	if def.Name != old.Name {
		return nil, compat.Errorf(libvirt.ErrConfigUnsupported, compat.FromDomain, "Target domain name '%s' does not match source '%s'", def.Name, old.Name)
	}
	return def, nil
}

// Restore implements driver.DomainSaves: the saved domain runs again,
// as the persistent domain of the same name and UUID if there is one,
// else as a transient domain.
func (d *Driver) Restore(ctx context.Context, path, xml string, flags uint32) error {
	if err := checkSaveFlags(flags, saveBypassCache|saveRunning|savePaused|saveResetNvram); err != nil {
		return err
	}
	f, im, err := savefile.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	def, uuid, err := d.parseDefinition(im.XML)
	if err != nil {
		return err
	}
	if xml != "" {
		if def, err = d.sameDomain(def, xml); err != nil {
			return err
		}
	}
	d.mu.Lock()
	existing, err := d.checkClash(def.Name, uuid)
	if err == nil && existing != nil && existing.active() {
		err = compat.Errorf(libvirt.ErrOperationInvalid, compat.FromDomain, "domain '%s' is already active", def.Name)
	}
	if err != nil {
		d.mu.Unlock()
		return err
	}
	dom := existing
	if dom == nil {
		dom = newDomain(def.Name, uuid)
		d.addLocked(dom)
	}
	d.mu.Unlock()
	err = withJob(ctx, dom, "remoteDispatchDomainRestoreFlags", func() error {
		return d.restoreFrom(ctx, dom, def, f, runningAfter(im.WasRunning, flags), false)
	})
	if err != nil && existing == nil {
		d.remove(dom)
	}
	return err
}

// restoreFrom starts QEMU waiting for an incoming migration, feeds it the
// image's stream (f, positioned at it) and starts the CPUs when running.
// States and events are libvirt's: started (restored), then running
// (restored) or paused. startPaused says the caller asked for a paused
// start (virsh start --paused of a managed-saved domain), which libvirt
// reports as suspended/paused rather than suspended/restored. The caller
// holds dom's job.
func (d *Driver) restoreFrom(ctx context.Context, dom *domain, def *libvirtxml.Domain, f *os.File, running, startPaused bool) error {
	if err := d.start(ctx, dom, def, startOptions{incoming: "defer"}); err != nil {
		return err
	}
	fail := func(err error) error {
		if serr := d.stop(d.ctx, dom, stopCause{reason: libvirt.DomainShutoffFailed, detail: libvirt.DomainEventStoppedFailed}, time.Second); serr != nil {
			d.log.Error("stop QEMU after a failed restore", "domain", dom.name, "err", serr)
		}
		return err
	}
	mon, err := dom.monitor()
	if err != nil {
		return fail(err)
	}
	if err := mon.GetFD(ctx, restoreFDName, f); err != nil {
		return fail(compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "pass the save file to QEMU: %v", err))
	}
	if err := d.startIncoming(ctx, dom, mon, "fd:"+restoreFDName, true, migparams.Tuning{}, false); err != nil {
		return fail(err)
	}
	if _, err := waitIncoming(ctx, mon, incomingTimeout, false); err != nil {
		return fail(err)
	}
	d.resetMigrationSettings(ctx, dom, mon)
	d.emitLifecycle(dom.ref(), libvirt.DomainEventStarted, int32(libvirt.DomainEventStartedRestored))
	if running {
		if err := mon.Cont(ctx); err != nil {
			return fail(fmt.Errorf("start CPUs: %w", err))
		}
		dom.setState(libvirt.DomainRunning, int32(libvirt.DomainRunningRestored))
	} else {
		// libvirt leaves a restored guest it does not run as an incoming
		// migration it did not resume: "paused (migrating)".
		dom.setState(libvirt.DomainPaused, int32(libvirt.DomainPausedMigration))
		detail := libvirt.DomainEventSuspendedRestored
		if startPaused {
			detail = libvirt.DomainEventSuspendedPaused
		}
		d.emitLifecycle(dom.ref(), libvirt.DomainEventSuspended, int32(detail))
	}
	if err := d.saveStatus(dom); err != nil {
		return fail(err)
	}
	d.log.Info("domain restored", "domain", dom.name, "running", running)
	return nil
}

// SaveImageGetXMLDesc implements driver.DomainSaves: the definition in an
// image, as libvirt prints it (inactive; passwords only with
// VIR_DOMAIN_SAVE_IMAGE_XML_SECURE).
func (d *Driver) SaveImageGetXMLDesc(ctx context.Context, path string, flags uint32) (string, error) {
	if flags&^uint32(libvirt.DomainSaveImageXMLSecure) != 0 {
		return "", errUnsupportedFlags(flags)
	}
	im, err := savefile.Read(path)
	if err != nil {
		return "", err
	}
	return d.imageXML(im, flags)
}

func (d *Driver) imageXML(im *savefile.Image, flags uint32) (string, error) {
	def, _, err := d.parseDefinition(im.XML)
	if err != nil {
		return "", err
	}
	return domainxml.Format(def, domainxml.FormatOptions{Inactive: true, Secure: flags&uint32(libvirt.DomainSaveImageXMLSecure) != 0})
}

// SaveImageDefineXML implements driver.DomainSaves: the image's definition
// replaced in place, and its running/paused state with the flags.
func (d *Driver) SaveImageDefineXML(ctx context.Context, path, xml string, flags uint32) error {
	if err := checkSaveFlags(flags, saveRunning|savePaused); err != nil {
		return err
	}
	im, err := savefile.Read(path)
	if err != nil {
		return err
	}
	return d.redefineImage(path, im, xml, flags)
}

func (d *Driver) redefineImage(path string, im *savefile.Image, xml string, flags uint32) error {
	old, _, err := d.parseDefinition(im.XML)
	if err != nil {
		return err
	}
	def, err := d.sameDomain(old, xml)
	if err != nil {
		return err
	}
	text, err := domainxml.Format(def, domainxml.FormatOptions{Inactive: true, Secure: true})
	if err != nil {
		return err
	}
	var running *bool
	if flags&(saveRunning|savePaused) != 0 {
		r := flags&saveRunning != 0
		running = &r
	}
	return savefile.UpdateXML(path, text, running)
}
