package qemu

import (
	"sync"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/driver/qemu/process"
	"github.com/govirtd/govirtd/driver/qemu/qmp"
)

// domain is one domain known to the driver, running or not.
//
// Two locks: job serializes operations (start, destroy, migrate, ...) and is
// held for as long as they take; mu guards the fields below and is held only
// for short reads and updates, so status queries never wait for a job.
type domain struct {
	job *jobLock

	mu         sync.Mutex
	name       string
	uuid       libvirt.UUID
	persistent bool
	// def and live are never modified once set here: a change installs a
	// new definition (GetXMLDesc's cache relies on it).
	def       *libvirtxml.Domain // persistent definition; nil for a transient domain
	live      *libvirtxml.Domain // running definition; nil while shut off
	id        int32              // -1 while shut off
	state     libvirt.DomainState
	reason    int32
	autostart bool
	// managedSave: a managed save image exists (managedsave.go).
	managedSave bool

	proc *process.Process
	mon  *qmp.Monitor
	// runDir is the running process's runtime directory.
	runDir string
	// stopReason is set by whoever stops the domain on purpose (destroy,
	// guest shutdown, migration) before QEMU exits, so the exit handler
	// knows which event to report; unset means QEMU died on its own.
	stopReason *stopCause
	// stopped is closed once a running domain's exit has been handled.
	stopped chan struct{}
	// fakeReboot: a guest shutdown requested by virDomainReboot restarts
	// the guest instead of ending it (libvirt's fake reboot).
	fakeReboot bool
	// taint holds why the running domain is tainted (taintFlag bits).
	taint taintFlag

	// mig is the migration in progress on this host, if any.
	mig *migState
	// completed holds the statistics of the last finished migration job,
	// for virsh domjobinfo --completed.
	completed *completedJob
	// maxSpeed is the migration bandwidth limit in MiB/s (0: unlimited).
	maxSpeed uint64
	// maxDowntime is the migration downtime limit in ms (0: QEMU's default).
	maxDowntime uint64
	// migCaps are the migration capabilities this QEMU has on (absent:
	// off), so a migration sends QEMU only the ones that change: QEMU 7.2
	// spends ~0.4 ms checking each listed capability, and libvirt's full
	// list of eleven costs 5–8 ms per call. nil when unknown (a QEMU
	// reattached after a daemon restart): then the full list is sent.
	migCaps map[string]bool
	// liveXML is live formatted for the status file (liveXMLFor is the
	// definition it was formatted from).
	liveXMLFor *libvirtxml.Domain
	liveXML    string
	// xmlCache holds formatted XML by definition and flags.
	xmlCache map[xmlCacheKey]string
	// unplugs are the device_del requests waiting for DEVICE_DELETED,
	// by device id (hotplug.go).
	unplugs map[string]*pendingUnplug
}

// stopCause is what the exit handler reports when QEMU goes away.
type stopCause struct {
	reason libvirt.DomainShutoffReason
	detail libvirt.DomainEventStoppedDetailType
}

func newDomain(name string, uuid libvirt.UUID) *domain {
	return &domain{job: newJobLock(), name: name, uuid: uuid, id: -1, state: libvirt.DomainShutoff, reason: int32(libvirt.DomainShutoffUnknown)}
}

// ref is the wire identity of the domain.
func (d *domain) ref() libvirt.Domain {
	d.mu.Lock()
	defer d.mu.Unlock()
	return libvirt.Domain{Name: d.name, UUID: d.uuid, ID: d.id}
}

func (d *domain) active() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.id != -1
}

// current returns the definition that describes the domain now: the live
// one while running, the persistent one otherwise.
func (d *domain) current() *libvirtxml.Domain {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.live != nil {
		return d.live
	}
	return d.def
}

func (d *domain) setState(s libvirt.DomainState, reason int32) {
	d.mu.Lock()
	d.state, d.reason = s, reason
	d.mu.Unlock()
}
