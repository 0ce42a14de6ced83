package qemu

import (
	"context"
	"errors"
	"strings"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver/qemu/qmp"
)

// pendingUnplug is a device_del waiting for QEMU's DEVICE_DELETED.
type pendingUnplug struct {
	mon     *qmp.Monitor
	deleted chan struct{}
	// finish completes the removal (block nodes, netdev, the live
	// definition); once the detach call has stopped waiting (async), the
	// event handler runs it.
	finish func(context.Context)
	async  bool
}

// unplugThen asks QEMU to remove the device with the given id and waits
// for the guest to let it go, as libvirt does: up to unplugWait. It
// reports whether the device is gone. If it is not, finish runs when
// DEVICE_DELETED arrives; if it is, the caller completes the removal.
func (d *Driver) unplugThen(ctx context.Context, dom *domain, mon *qmp.Monitor, id string, finish func(context.Context)) (bool, error) {
	p := &pendingUnplug{mon: mon, deleted: make(chan struct{}), finish: finish}
	dom.mu.Lock()
	if dom.unplugs == nil {
		dom.unplugs = map[string]*pendingUnplug{}
	}
	dom.unplugs[id] = p
	dom.mu.Unlock()
	if err := mon.DeviceDel(ctx, id); err != nil {
		dom.mu.Lock()
		if dom.unplugs[id] == p {
			delete(dom.unplugs, id)
		}
		dom.mu.Unlock()
		return false, compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "%v", err)
	}
	timer := time.NewTimer(unplugWait)
	defer timer.Stop()
	select {
	case <-p.deleted:
	case <-timer.C:
	case <-ctx.Done():
	case <-mon.Disconnected():
	}
	dom.mu.Lock()
	defer dom.mu.Unlock()
	select {
	case <-p.deleted:
		return true, nil
	default:
		p.async = true
		return false, nil
	}
}

// deviceDeleted handles DEVICE_DELETED: it wakes the detach waiting for
// it or, once that has returned, finishes the removal under a job of its
// own (libvirt's processDeviceDeletedEvent).
func (d *Driver) deviceDeleted(dom *domain, mon *qmp.Monitor, ev qmp.Event) {
	id := ev.DataString("device")
	if id == "" {
		id = unpluggedVcpu(ev.DataString("path"))
	}
	dom.mu.Lock()
	p := dom.unplugs[id]
	if p == nil || p.mon != mon {
		dom.mu.Unlock()
		return
	}
	delete(dom.unplugs, id)
	close(p.deleted)
	async := p.async
	dom.mu.Unlock()
	if !async || p.finish == nil {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(d.ctx, time.Minute)
		defer cancel()
		err := withJob(ctx, dom, "processDeviceDeletedEvent", func() error {
			if !dom.active() {
				return nil
			}
			p.finish(ctx)
			return nil
		})
		if err != nil && !errors.Is(err, context.Canceled) {
			d.log.Warn("cannot finish a device removal", "domain", dom.name, "device", id, "err", err)
		}
	}()
}

// unpluggedVcpu names the hot-plugged vCPU a DEVICE_DELETED without a
// device id is about: QEMU 7.2 reports an x86 vCPU's removal only as
// that of its local APIC (path /machine/peripheral/vcpuN/lapic), and
// never with the vCPU's own id.
func unpluggedVcpu(path string) string {
	rest, ok := strings.CutPrefix(path, "/machine/peripheral/")
	if !ok {
		return ""
	}
	name, child, ok := strings.Cut(rest, "/")
	if !ok || child != "lapic" || !strings.HasPrefix(name, "vcpu") {
		return ""
	}
	return name
}
