package qemu

import (
	"context"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver"
	"github.com/govirtd/govirtd/driver/qemu/qmp"
)

// Flags of the lifecycle calls (libvirt-domain.h).
const (
	startPaused      = 1 // VIR_DOMAIN_START_PAUSED
	startAutodestroy = 2 // VIR_DOMAIN_START_AUTODESTROY
	startBypassCache = 4
	startForceBoot   = 8
	startValidate    = 16
	destroyGraceful  = 1 // VIR_DOMAIN_DESTROY_GRACEFUL
)

// withJob runs fn holding dom's job lock.
func withJob(ctx context.Context, dom *domain, what string, fn func() error) error {
	release, err := dom.job.acquire(ctx, what)
	if err != nil {
		return err
	}
	defer release()
	return fn()
}

// Create implements driver.Domains.
func (d *Driver) Create(ctx context.Context, ref libvirt.Domain, flags uint32) (libvirt.Domain, error) {
	if flags&^(startPaused|startBypassCache|startForceBoot) != 0 {
		return libvirt.Domain{}, errUnsupportedFlags(flags)
	}
	dom, err := d.get(ref)
	if err != nil {
		return libvirt.Domain{}, err
	}
	err = withJob(ctx, dom, "remoteDispatchDomainCreate", func() error {
		return d.bootOrRestore(ctx, dom, flags&startPaused != 0, flags&startForceBoot != 0)
	})
	if err != nil {
		return libvirt.Domain{}, err
	}
	return dom.ref(), nil
}

// CreateXML implements driver.Domains: a transient domain that disappears
// when it stops.
func (d *Driver) CreateXML(ctx context.Context, xml string, flags uint32) (libvirt.Domain, error) {
	if flags&^(startPaused|startBypassCache|startValidate) != 0 {
		return libvirt.Domain{}, errUnsupportedFlags(flags)
	}
	def, uuid, err := d.parseDefinition(xml)
	if err != nil {
		return libvirt.Domain{}, err
	}
	d.mu.Lock()
	existing, err := d.checkClash(def.Name, uuid)
	if err == nil && existing != nil {
		// Same name and UUID as a defined domain: libvirt starts the new
		// definition if the domain is not running, as a one-off.
		if existing.active() {
			err = compat.Errorf(libvirt.ErrOperationInvalid, compat.FromDomain, "domain '%s' is already active", def.Name)
		}
	}
	if err != nil {
		d.mu.Unlock()
		return libvirt.Domain{}, err
	}
	dom := existing
	if dom == nil {
		dom = newDomain(def.Name, uuid)
		d.addLocked(dom)
	}
	d.mu.Unlock()
	err = withJob(ctx, dom, "remoteDispatchDomainCreateXML", func() error {
		return d.start(ctx, dom, def, startOptions{paused: flags&startPaused != 0, reason: libvirt.DomainRunningBooted})
	})
	if err != nil {
		if existing == nil {
			d.remove(dom)
		}
		return libvirt.Domain{}, err
	}
	return dom.ref(), nil
}

// Destroy implements driver.Domains.
func (d *Driver) Destroy(ctx context.Context, ref libvirt.Domain, flags uint32) error {
	if flags&^destroyGraceful != 0 {
		return errUnsupportedFlags(flags)
	}
	dom, err := d.get(ref)
	if err != nil {
		return err
	}
	// Like libvirt, SIGTERM first so QEMU can flush its disks, SIGKILL after
	// the grace period. (VIR_DOMAIN_DESTROY_GRACEFUL is accepted and treated
	// the same: govirtd never leaves a destroy half done.)
	return withJob(ctx, dom, "remoteDispatchDomainDestroy", func() error {
		return d.stop(ctx, dom, stopCause{reason: libvirt.DomainShutoffDestroyed, detail: libvirt.DomainEventStoppedDestroyed}, killGrace)
	})
}

// Shutdown implements driver.Domains: an ACPI power button press. It
// returns once the request is delivered; the guest decides what to do.
func (d *Driver) Shutdown(ctx context.Context, ref libvirt.Domain, flags uint32) error {
	dom, err := d.get(ref)
	if err != nil {
		return err
	}
	return withJob(ctx, dom, "remoteDispatchDomainShutdown", func() error {
		mon, err := dom.monitor()
		if err != nil {
			return err
		}
		// As qemuDomainShutdownFlagsMonitor: a paused guest cannot see
		// the button, so the request is refused rather than left queued.
		dom.mu.Lock()
		st := dom.state
		dom.mu.Unlock()
		if st != libvirt.DomainRunning {
			return errNotRunning()
		}
		return mon.SystemPowerdown(ctx)
	})
}

// Reboot implements driver.Domains the way libvirt's QEMU driver does
// without a guest agent: an ACPI power button press, and when the guest
// powers off, a reset and resume instead of an exit ("fake reboot").
func (d *Driver) Reboot(ctx context.Context, ref libvirt.Domain, flags uint32) error {
	dom, err := d.get(ref)
	if err != nil {
		return err
	}
	return withJob(ctx, dom, "remoteDispatchDomainReboot", func() error {
		mon, err := dom.monitor()
		if err != nil {
			return err
		}
		dom.mu.Lock()
		dom.fakeReboot = true
		dom.mu.Unlock()
		return mon.SystemPowerdown(ctx)
	})
}

// Reset implements driver.Domains: a hardware reset, without the guest's
// cooperation.
func (d *Driver) Reset(ctx context.Context, ref libvirt.Domain, flags uint32) error {
	if flags != 0 {
		return errUnsupportedFlags(flags)
	}
	dom, err := d.get(ref)
	if err != nil {
		return err
	}
	return withJob(ctx, dom, "remoteDispatchDomainReset", func() error {
		mon, err := dom.monitor()
		if err != nil {
			return err
		}
		return mon.SystemReset(ctx)
	})
}

// Suspend implements driver.Domains.
func (d *Driver) Suspend(ctx context.Context, ref libvirt.Domain) error {
	dom, err := d.get(ref)
	if err != nil {
		return err
	}
	return withJob(ctx, dom, "remoteDispatchDomainSuspend", func() error {
		mon, err := dom.monitor()
		if err != nil {
			return err
		}
		dom.mu.Lock()
		state := dom.state
		dom.mu.Unlock()
		if state == libvirt.DomainPaused {
			return nil
		}
		if err := mon.Stop(ctx); err != nil {
			return err
		}
		// The STOP event usually arrives first; make the state true even if
		// it has not, so the caller's next query sees it paused.
		d.markPaused(dom, libvirt.DomainPausedUser)
		return nil
	})
}

func (d *Driver) markPaused(dom *domain, reason libvirt.DomainPausedReason) {
	dom.mu.Lock()
	changed := dom.state == libvirt.DomainRunning
	if changed {
		dom.state, dom.reason = libvirt.DomainPaused, int32(reason)
	}
	dom.mu.Unlock()
	if changed {
		d.saveStatus(dom)
		d.emitLifecycle(dom.ref(), libvirt.DomainEventSuspended, int32(libvirt.DomainEventSuspendedPaused))
	}
}

// Resume implements driver.Domains.
func (d *Driver) Resume(ctx context.Context, ref libvirt.Domain) error {
	dom, err := d.get(ref)
	if err != nil {
		return err
	}
	return withJob(ctx, dom, "remoteDispatchDomainResume", func() error {
		mon, err := dom.monitor()
		if err != nil {
			return err
		}
		dom.mu.Lock()
		paused := dom.state == libvirt.DomainPaused
		dom.mu.Unlock()
		if !paused {
			return mon.Cont(ctx)
		}
		if err := contAsRunning(ctx, dom, mon, int32(libvirt.DomainRunningUnpaused)); err != nil {
			return err
		}
		d.saveStatus(dom)
		d.emitLifecycle(dom.ref(), libvirt.DomainEventResumed, int32(libvirt.DomainEventResumedUnpaused))
		return nil
	})
}

// contAsRunning resumes the guest's vCPUs with the domain recorded as
// running (for reason) before cont: a guest that QEMU stops again at once
// (a disk request that fails again) is paused by the events that follow,
// which must find it running. If cont fails, the state before comes back,
// unless an event has changed it meanwhile.
func contAsRunning(ctx context.Context, dom *domain, mon *qmp.Monitor, reason int32) error {
	dom.mu.Lock()
	prevState, prevReason := dom.state, dom.reason
	dom.state, dom.reason = libvirt.DomainRunning, reason
	dom.mu.Unlock()
	if err := mon.Cont(ctx); err != nil {
		dom.mu.Lock()
		if dom.state == libvirt.DomainRunning && dom.reason == reason {
			dom.state, dom.reason = prevState, prevReason
		}
		dom.mu.Unlock()
		return err
	}
	return nil
}

func eventReboot(ref libvirt.Domain) driver.Event {
	return driver.Event{ID: libvirt.DomainEventIDReboot, Dom: ref}
}
