package qemu

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver/qemu/domainxml"
	"github.com/govirtd/govirtd/driver/qemu/snapshot"
)

// The images' side of snapshots: qemu-img on a shut off domain's disks,
// HMP savevm/loadvm/delvm on a running one (libvirt 9.0 runs these
// through human-monitor-command; QEMU's snapshot-save jobs came into
// libvirt later).

// qemuImgTimeout bounds one qemu-img run.
var qemuImgTimeout = 5 * time.Minute

func runQemuImg(ctx context.Context, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, qemuImgTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "qemu-img", args...).CombinedOutput()
	if err != nil {
		return compat.Errorf(libvirt.ErrInternalError, compat.FromNone, "Child process (qemu-img %s) unexpected exit status: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// qcow2Snapshots is qemuDomainSnapshotForEachQcow2: qemu-img snapshot op
// (-c, -a or -d) with the snapshot's name on each of dom's disks the
// snapshot holds internally. A failed -c deletes what the earlier disks
// got.
func qcow2Snapshots(ctx context.Context, dom *libvirtxml.Domain, def *libvirtxml.DomainSnapshot, op string) error {
	for i, disk := range disksOf(dom) {
		if !internalDisk(def, &disk) {
			continue
		}
		if f := diskFormat(&disk); f != "qcow2" {
			if op == "-c" {
				rollbackQcow2(dom, def, i)
			}
			return compat.Errorf(libvirt.ErrOperationInvalid, compat.FromQEMU, "Disk device '%s' does not support snapshotting", diskTarget(&disk))
		}
		if err := runQemuImg(ctx, "snapshot", op, def.Name, diskPath(&disk)); err != nil {
			if op == "-c" {
				rollbackQcow2(dom, def, i)
			}
			return err
		}
	}
	return nil
}

func rollbackQcow2(dom *libvirtxml.Domain, def *libvirtxml.DomainSnapshot, upTo int) {
	for _, disk := range disksOf(dom)[:upTo] {
		if internalDisk(def, &disk) {
			runQemuImg(context.Background(), "snapshot", "-d", def.Name, diskPath(&disk))
		}
	}
}

func disksOf(dom *libvirtxml.Domain) []libvirtxml.DomainDisk {
	if dom == nil || dom.Devices == nil {
		return nil
	}
	return dom.Devices.Disks
}

// internalDisk tells whether the snapshot holds disk internally: as its
// snapshot disk says, or, for a disk it does not list, any writable disk
// with an image.
func internalDisk(def *libvirtxml.DomainSnapshot, disk *libvirtxml.DomainDisk) bool {
	if def.Disks != nil && disk.Target != nil {
		for _, sd := range snapDisks(def) {
			if sd.Name == disk.Target.Dev {
				return sd.Snapshot == snapshot.LocationInternal
			}
		}
	}
	return diskPath(disk) != "" && disk.ReadOnly == nil && disk.Device != "cdrom"
}

// hmpQuote quotes an HMP string argument.
func hmpQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

// hmpSnapshot runs savevm, loadvm or delvm and turns QEMU's text into
// libvirt's errors (qemuMonitorTextCreateSnapshot and friends).
func hmpSnapshot(ctx context.Context, dom *domain, cmd, name string) error {
	mon, err := dom.monitor()
	if err != nil {
		return err
	}
	out, err := mon.HumanMonitorCommand(ctx, cmd+" "+hmpQuote(name))
	if err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	out = strings.TrimSpace(out)
	if out == "" {
		return nil
	}
	invalid := func(format string, args ...any) error {
		return compat.Errorf(libvirt.ErrOperationInvalid, compat.FromQEMU, format, args...)
	}
	failed := func(what string) error {
		return compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "Failed to %s snapshot: %s", what, out)
	}
	switch cmd {
	case "savevm":
		if strings.Contains(out, "No block device can accept snapshots") {
			return invalid("this domain does not have a device to take snapshots")
		}
		return failed("take")
	case "loadvm":
		switch {
		case strings.Contains(out, "No block device supports snapshots"):
			return invalid("this domain does not have a device to load snapshots")
		case strings.Contains(out, "Could not find snapshot") || strings.Contains(out, "not found"):
			return invalid("the snapshot '%s' does not exist, and was not loaded", name)
		}
		return failed("load")
	default:
		switch {
		case strings.Contains(out, "No block device supports snapshots"):
			return invalid("this domain does not have a device to delete snapshots")
		case strings.Contains(out, "Snapshots not supported on device"):
			return invalid("%s", out)
		}
		return failed("delete")
	}
}

// pauseQuietly stops a running guest's CPUs for a snapshot: the state
// changes first, so the STOP event reports nothing (libvirt raises no
// event for the pause around savevm and loadvm). It reports whether the
// guest was running.
func (d *Driver) pauseQuietly(ctx context.Context, dom *domain, reason libvirt.DomainPausedReason) (bool, error) {
	dom.mu.Lock()
	running := dom.state == libvirt.DomainRunning
	prevReason := dom.reason
	mon := dom.mon
	if running {
		dom.state, dom.reason = libvirt.DomainPaused, int32(reason)
	}
	dom.mu.Unlock()
	if !running || mon == nil {
		return false, nil
	}
	if err := mon.Stop(ctx); err != nil {
		dom.setState(libvirt.DomainRunning, prevReason)
		return false, fmt.Errorf("stop CPUs: %w", err)
	}
	return true, nil
}

// resumeQuietly runs the CPUs again with the given reason; the state
// changes first so that the RESUME event reports nothing. A failure
// leaves the guest paused, as libvirt reports it.
func (d *Driver) resumeQuietly(ctx context.Context, dom *domain, reason libvirt.DomainRunningReason) error {
	mon, err := dom.monitor()
	if err != nil {
		return err
	}
	dom.setState(libvirt.DomainRunning, int32(reason))
	if err := mon.Cont(ctx); err != nil {
		dom.setState(libvirt.DomainPaused, int32(libvirt.DomainPausedAPIError))
		d.emitLifecycle(dom.ref(), libvirt.DomainEventSuspended, int32(libvirt.DomainEventSuspendedAPIError))
		return compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "resuming after snapshot failed")
	}
	d.saveStatus(dom)
	return nil
}

// snapshotLiveInternal is qemuSnapshotCreateActiveInternal: the CPUs
// stop, savevm writes memory and disks into the qcow2 images, and a
// guest that ran runs on.
func (d *Driver) snapshotLiveInternal(ctx context.Context, dom *domain, name string) error {
	resume, err := d.pauseQuietly(ctx, dom, libvirt.DomainPausedSnapshot)
	if err != nil {
		return err
	}
	err = hmpSnapshot(ctx, dom, "savevm", name)
	if resume && dom.active() {
		if rerr := d.resumeQuietly(ctx, dom, libvirt.DomainRunningUnpaused); rerr != nil && err == nil {
			err = rerr
		}
	}
	return err
}

// discardInternal removes snapshot name from the domain's images:
// delvm while it runs, qemu-img snapshot -d on each qcow2 disk otherwise
// (a disk without it is skipped, as libvirt does).
func (d *Driver) discardInternal(ctx context.Context, dom *domain, name string) error {
	dom.mu.Lock()
	active, def := dom.id != -1, dom.def
	dom.mu.Unlock()
	if active {
		return hmpSnapshot(ctx, dom, "delvm", name)
	}
	for _, disk := range disksOf(def) {
		if diskPath(&disk) == "" || disk.ReadOnly != nil || disk.Device == "cdrom" || diskFormat(&disk) != "qcow2" {
			continue
		}
		if err := runQemuImg(ctx, "snapshot", "-d", name, diskPath(&disk)); err != nil {
			d.log.Warn("skipping snapshot removal on a disk", "domain", dom.name, "disk", diskTarget(&disk), "err", err)
		}
	}
	return nil
}

// snapshotOfflineExternal is qemuSnapshotCreateInactiveExternal: a new
// qcow2 overlay on each selected disk's image (unless reused), and the
// persistent definition pointed at them.
func (d *Driver) snapshotOfflineExternal(dom *domain, def *libvirtxml.DomainSnapshot, reuse bool) error {
	dom.mu.Lock()
	config := dom.def
	dom.mu.Unlock()
	changed, err := cloneDef(config)
	if err != nil {
		return err
	}
	var created []string
	fail := func(err error) error {
		for _, p := range created {
			os.Remove(p)
		}
		return err
	}
	for i, sd := range snapDisks(def) {
		if sd.Snapshot != snapshot.LocationExternal {
			continue
		}
		disk := &changed.Devices.Disks[i]
		path := sd.Source.File.File
		if !reuse {
			_, statErr := os.Stat(path)
			if err := runQemuImg(context.Background(), "create", "-f", "qcow2", "-o",
				"backing_fmt="+diskFormat(disk)+",backing_file="+strings.ReplaceAll(diskPath(disk), ",", ",,"),
				path); err != nil {
				return fail(err)
			}
			if statErr != nil {
				created = append(created, path)
			}
		}
		// A recorded chain stays under the new image, unless the image
		// is the caller's (qemuSnapshotCreateInactiveExternal).
		if !reuse && !domainxml.EmptyBackingStore(disk.BackingStore) {
			stackPersistent(disk, path)
		} else {
			setDiskImage(disk, path)
		}
	}
	if err := d.saveConfig(dom, config, changed); err != nil {
		return fail(err)
	}
	return nil
}

// setDiskImage points a persistent disk at a new top image; its chain is
// probed again when the domain starts.
func setDiskImage(disk *libvirtxml.DomainDisk, path string) {
	disk.Source = &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: path}}
	if disk.Driver == nil {
		disk.Driver = &libvirtxml.DomainDiskDriver{Name: "qemu"}
	}
	disk.Driver.Type = "qcow2"
	disk.BackingStore = nil
}
