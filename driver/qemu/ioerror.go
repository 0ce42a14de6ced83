package qemu

import (
	"context"
	"strings"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver"
	"github.com/govirtd/govirtd/driver/qemu/qemucmd"
	"github.com/govirtd/govirtd/driver/qemu/qmp"
)

// Disk I/O errors, as libvirt reports them: QEMU's BLOCK_IO_ERROR becomes
// the io-error and io-error-reason events, and a disk whose error_policy
// stops the guest leaves it paused (I/O error) (qemuProcessHandleIOError);
// virsh domblkerror reads each disk's io-status (qemuDomainGetDiskErrors).

// ioErrorAction maps QEMU's action to virDomainEventIOErrorAction.
func ioErrorAction(action string) libvirt.DomainEventIOErrorAction {
	switch action {
	case "stop":
		return libvirt.DomainEventIoErrorPause
	case "report":
		return libvirt.DomainEventIoErrorReport
	}
	return libvirt.DomainEventIoErrorNone
}

// ioErrorDisk finds the disk a BLOCK_IO_ERROR names: by its legacy drive
// name when QEMU gives one, else by the node name (libvirt's
// "libvirt-N-format"/"-storage" of the disk's top image).
func ioErrorDisk(def *libvirtxml.Domain, device, node string) *libvirtxml.DomainDisk {
	if def == nil || def.Devices == nil {
		return nil
	}
	for i := range def.Devices.Disks {
		disk := &def.Devices.Disks[i]
		alias := ""
		if disk.Alias != nil {
			alias = disk.Alias.Name
		}
		if device != "" && alias != "" && (device == alias || device == "drive-"+alias) {
			return disk
		}
		if node != "" && strings.HasPrefix(node, strings.TrimSuffix(qemucmd.DiskFormatNode(def, i), "format")) {
			return disk
		}
	}
	return nil
}

// blockIOError applies a BLOCK_IO_ERROR event.
func (d *Driver) blockIOError(dom *domain, ev qmp.Event) {
	action := ioErrorAction(ev.DataString("action"))
	reason := ""
	if nospace, _ := ev.Data["nospace"].(bool); nospace {
		reason = "enospc"
	}
	dom.mu.Lock()
	disk := ioErrorDisk(dom.live, ev.DataString("device"), ev.DataString("node-name"))
	src, alias := "", ""
	if disk != nil {
		src = diskPath(disk)
		if disk.Alias != nil {
			alias = disk.Alias.Name
		}
	}
	paused := action == libvirt.DomainEventIoErrorPause && dom.state == libvirt.DomainRunning
	if paused {
		dom.state, dom.reason = libvirt.DomainPaused, int32(libvirt.DomainPausedIoerror)
	}
	dom.mu.Unlock()
	d.log.Warn("disk I/O error", "domain", dom.name, "disk", alias, "source", src,
		"operation", ev.DataString("operation"), "action", ev.DataString("action"), "reason", ev.DataString("reason"))
	ref := dom.ref()
	d.emit(driver.Event{ID: libvirt.DomainEventIDIoError, Dom: ref, SrcPath: src, DevAlias: alias, IOErrorAction: int32(action)})
	d.emit(driver.Event{ID: libvirt.DomainEventIDIoErrorReason, Dom: ref, SrcPath: src, DevAlias: alias, IOErrorAction: int32(action), IOErrorReason: reason})
	if paused {
		d.log.Warn("guest paused by a disk I/O error", "domain", dom.name)
		d.saveStatus(dom)
		d.emitLifecycle(ref, libvirt.DomainEventSuspended, int32(libvirt.DomainEventSuspendedIoerror))
	}
}

// GetDiskErrors implements driver.DomainDiskErrors: the disks whose
// io-status is not ok, at most maxErrors of them; with maxErrors 0 the
// number of disks, which is what a caller sizes its array by (as libvirt).
func (d *Driver) GetDiskErrors(ctx context.Context, ref libvirt.Domain, maxErrors, flags uint32) ([]driver.DiskError, int32, error) {
	if flags != 0 {
		return nil, 0, compat.Errorf(libvirt.ErrInvalidArg, compat.FromQEMU, "qemuDomainGetDiskErrors: unsupported flags (0x%x)", flags)
	}
	dom, err := d.get(ref)
	if err != nil {
		return nil, 0, err
	}
	if !dom.active() {
		return nil, 0, errNotRunning()
	}
	dom.mu.Lock()
	live := dom.live
	dom.mu.Unlock()
	if maxErrors == 0 {
		if live == nil || live.Devices == nil {
			return nil, 0, nil
		}
		return nil, int32(len(live.Devices.Disks)), nil
	}
	mon, err := dom.monitor()
	if err != nil {
		return nil, 0, err
	}
	blocks, err := mon.QueryBlock(ctx)
	if err != nil {
		return nil, 0, compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "query-block: %v", err)
	}
	var out []driver.DiskError
	for i := range live.Devices.Disks {
		if uint32(len(out)) == maxErrors {
			break
		}
		disk := &live.Devices.Disks[i]
		info := blockOfDisk(blocks, live, i)
		if info == nil || info.IOStatus == "" || info.IOStatus == "ok" || disk.Target == nil {
			continue
		}
		code := libvirt.DomainDiskErrorUnspec
		if info.IOStatus == "nospace" {
			code = libvirt.DomainDiskErrorNoSpace
		}
		out = append(out, driver.DiskError{Disk: disk.Target.Dev, Error: int32(code)})
	}
	return out, int32(len(out)), nil
}

// blockOfDisk is query-block's entry for disk i: by the attached device's
// QOM name, or by the node name of its top image.
func blockOfDisk(blocks []qmp.BlockInfo, def *libvirtxml.Domain, i int) *qmp.BlockInfo {
	qom := diskQOMName(&def.Devices.Disks[i])
	node := qemucmd.DiskFormatNode(def, i)
	for j := range blocks {
		b := &blocks[j]
		if (qom != "" && b.QDev == qom) || (b.Inserted != nil && b.Inserted.NodeName == node) {
			return b
		}
	}
	return nil
}
