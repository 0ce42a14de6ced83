package qemu

import (
	"context"
	"errors"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver/qemu/qmp"
)

const memMaximum = uint32(libvirt.DomainMemMaximum)

// SetMemory implements driver.DomainDevices as libvirt's
// qemuDomainSetMemoryFlags: the maximum (<memory>) only in the persistent
// definition; the current size (<currentMemory>) live through the balloon
// and/or in the persistent definition. The live <currentMemory> follows
// the guest: BALLOON_CHANGE events update it (balloonChanged).
func (d *Driver) SetMemory(ctx context.Context, ref libvirt.Domain, kib uint64, flags uint32) error {
	if flags&^(affectLive|affectConfig|memMaximum) != 0 {
		return errUnsupportedFlagsIn(flags, "qemuDomainSetMemoryFlags")
	}
	dom, err := d.get(ref)
	if err != nil {
		return err
	}
	return withJob(ctx, dom, "remoteDispatchDomainSetMemoryFlags", func() error {
		live, config, err := dom.impactDefs(flags &^ memMaximum)
		if err != nil {
			return err
		}
		if flags&memMaximum != 0 {
			if live != nil {
				return compat.Errorf(libvirt.ErrOperationInvalid, compat.FromQEMU, "cannot resize the maximum memory on an active domain")
			}
			if config.CPU != nil && config.CPU.Numa != nil && len(config.CPU.Numa.Cell) > 0 {
				return compat.Errorf(libvirt.ErrOperationInvalid, compat.FromQEMU, "initial memory size of a domain with NUMA nodes cannot be modified with this API")
			}
			if config.MaximumMemory != nil && toKiB(config.MaximumMemory.Value, config.MaximumMemory.Unit) < kib {
				return compat.Errorf(libvirt.ErrOperationInvalid, compat.FromQEMU, "cannot set initial memory size greater than the maximum memory size")
			}
			c := *config
			c.Memory = &libvirtxml.DomainMemory{Value: uint(kib), Unit: "KiB"}
			if config.Memory != nil {
				c.Memory.DumpCore = config.Memory.DumpCore
			}
			if cur := currentKiB(config); cur == 0 || cur > kib {
				c.CurrentMemory = &libvirtxml.DomainCurrentMemory{Value: uint(kib), Unit: "KiB"}
			}
			return d.saveConfig(dom, config, &c)
		}
		// The limit is the smaller maximum of the definitions changed.
		var limit uint64
		if live != nil {
			limit = maxKiB(live)
		}
		if config != nil && (live == nil || limit > maxKiB(config)) {
			limit = maxKiB(config)
		}
		if kib > limit {
			return compat.Errorf(libvirt.ErrInvalidArg, compat.FromQEMU, "cannot set memory higher than max memory")
		}
		if live != nil {
			if err := d.balloon(ctx, dom, live, kib); err != nil {
				return err
			}
		}
		if config != nil {
			c := *config
			c.CurrentMemory = &libvirtxml.DomainCurrentMemory{Value: uint(kib), Unit: "KiB"}
			return d.saveConfig(dom, config, &c)
		}
		return nil
	})
}

// balloon sets the balloon target of a running domain. Without a virtio
// balloon QEMU has nothing to set (libvirt's qemuMonitorSetBalloon
// returns 0, which the caller reports as below).
func (d *Driver) balloon(ctx context.Context, dom *domain, live *libvirtxml.Domain, kib uint64) error {
	errNoBalloon := compat.Errorf(libvirt.ErrOperationInvalid, compat.FromQEMU,
		"Unable to change memory of active domain without the balloon device and guest OS balloon driver")
	if mb := live.Devices.MemBalloon; mb == nil || mb.Model != "virtio" {
		return errNoBalloon
	}
	mon, err := dom.monitor()
	if err != nil {
		return err
	}
	if err := mon.Balloon(ctx, int64(kib)*1024); err != nil {
		var ce *qmp.CommandError
		if errors.As(err, &ce) && ce.Class == "DeviceNotActive" {
			return errNoBalloon
		}
		return errQMP(err)
	}
	return nil
}

// balloonChanged applies a BALLOON_CHANGE event: the guest's memory as
// the balloon now leaves it is the live <currentMemory>
// (qemuProcessHandleBalloonChange).
func (d *Driver) balloonChanged(dom *domain, ev qmp.Event) {
	kib := uint(ev.DataInt("actual") / 1024)
	if kib == 0 {
		return
	}
	err := d.updateLive(dom, func(live *libvirtxml.Domain) *libvirtxml.Domain {
		c := *live
		c.CurrentMemory = &libvirtxml.DomainCurrentMemory{Value: kib, Unit: "KiB"}
		return &c
	})
	if err != nil {
		d.log.Warn("cannot save the balloon size", "domain", dom.name, "err", err)
	}
}

func maxKiB(def *libvirtxml.Domain) uint64 {
	if def.Memory == nil {
		return 0
	}
	return toKiB(def.Memory.Value, def.Memory.Unit)
}

func currentKiB(def *libvirtxml.Domain) uint64 {
	if def.CurrentMemory == nil {
		return 0
	}
	return toKiB(def.CurrentMemory.Value, def.CurrentMemory.Unit)
}
