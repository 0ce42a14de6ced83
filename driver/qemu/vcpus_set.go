package qemu

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver/qemu/qmp"
)

var (
	vcpuMaximum      = uint32(libvirt.DomainVCPUMaximum)
	vcpuGuest        = uint32(libvirt.DomainVCPUGuest)
	vcpuHotpluggable = uint32(libvirt.DomainVCPUHotpluggable)
)

// vcpuCurrent is the number of online vCPUs a definition describes.
func vcpuCurrent(def *libvirtxml.Domain) uint {
	if def.VCPU != nil && def.VCPU.Current != 0 {
		return def.VCPU.Current
	}
	return vcpuMax(def)
}

// withVcpus is def with cur of max vCPUs online (libvirt prints current
// only when it differs from the maximum).
func withVcpus(def *libvirtxml.Domain, cur, max uint) *libvirtxml.Domain {
	c := *def
	v := libvirtxml.DomainVCPU{Placement: "static"}
	if def.VCPU != nil {
		v = *def.VCPU
	}
	v.Value, v.Current = max, cur
	if cur == max {
		v.Current = 0
	}
	c.VCPU = &v
	return &c
}

// SetVcpus implements driver.DomainDevices as libvirt's
// qemuDomainSetVcpusFlags: the maximum only in the persistent
// definition; the online count in the persistent definition and/or live,
// by plugging or unplugging vCPUs of the running QEMU.
func (d *Driver) SetVcpus(ctx context.Context, ref libvirt.Domain, n uint32, flags uint32) error {
	if flags&^(affectLive|affectConfig|vcpuMaximum|vcpuGuest|vcpuHotpluggable) != 0 {
		return errUnsupportedFlagsIn(flags, "qemuDomainSetVcpusFlags")
	}
	if n == 0 {
		return compat.Errorf(libvirt.ErrInvalidArg, compat.FromDomain, "nvcpus in qemuDomainSetVcpusFlags must not be zero")
	}
	dom, err := d.get(ref)
	if err != nil {
		return err
	}
	return withJob(ctx, dom, "remoteDispatchDomainSetVcpusFlags", func() error {
		live, config, err := dom.impactDefs(flags &^ (vcpuMaximum | vcpuGuest | vcpuHotpluggable))
		if err != nil {
			return err
		}
		if flags&vcpuGuest != 0 {
			return compat.Errorf(libvirt.ErrArgumentUnsupported, compat.FromQEMU, "QEMU guest agent is not configured")
		}
		nv := uint(n)
		if flags&vcpuMaximum != 0 {
			if live != nil {
				return compat.Errorf(libvirt.ErrConfigUnsupported, compat.FromQEMU, "maximum vcpu count of a live domain can't be modified")
			}
			if t := config.CPU; t != nil && t.Topology != nil && t.Topology.Sockets > 0 {
				dies := max(t.Topology.Dies, 1)
				if uint(t.Topology.Sockets*dies*t.Topology.Cores*t.Topology.Threads) != nv {
					return compat.Errorf(libvirt.ErrInvalidArg, compat.FromQEMU, "CPU topology doesn't match the desired vcpu count")
				}
			}
			return d.saveConfig(dom, config, withVcpus(config, min(vcpuCurrent(config), nv), nv))
		}
		if live != nil && nv > vcpuMax(live) {
			return compat.Errorf(libvirt.ErrInvalidArg, compat.FromQEMU, "requested vcpus is greater than max allowable vcpus for the live domain: %d > %d", nv, vcpuMax(live))
		}
		if config != nil && nv > vcpuMax(config) {
			return compat.Errorf(libvirt.ErrInvalidArg, compat.FromQEMU, "requested vcpus is greater than max allowable vcpus for the persistent domain: %d > %d", nv, vcpuMax(config))
		}
		if live != nil {
			if err := d.setLiveVcpus(ctx, dom, live, nv); err != nil {
				return err
			}
		}
		if config != nil {
			return d.saveConfig(dom, config, withVcpus(config, nv, vcpuMax(config)))
		}
		return nil
	})
}

// cpuSlot is one vCPU slot of the running QEMU, numbered as libvirt
// numbers vCPUs: in socket/die/core/thread order.
type cpuSlot struct {
	index int
	qmp.HotpluggableCPU
}

func cpuSlots(cpus []qmp.HotpluggableCPU) []cpuSlot {
	key := func(c qmp.HotpluggableCPU) [4]int {
		return [4]int{c.Props["socket-id"], c.Props["die-id"], c.Props["core-id"], c.Props["thread-id"]}
	}
	sort.Slice(cpus, func(i, j int) bool {
		a, b := key(cpus[i]), key(cpus[j])
		for k := range a {
			if a[k] != b[k] {
				return a[k] < b[k]
			}
		}
		return false
	})
	slots := make([]cpuSlot, len(cpus))
	for i, c := range cpus {
		slots[i] = cpuSlot{index: i, HotpluggableCPU: c}
	}
	return slots
}

// vcpuID is the QEMU id libvirt gives a hot-plugged vCPU (its alias).
func vcpuID(index int) string { return fmt.Sprintf("vcpu%d", index) }

// hotplugged reports whether a present vCPU was plugged with device_add
// (only those can be unplugged: the ones -smp created are not
// hotpluggable, as libvirt marks a domain's initially online vCPUs).
func (s cpuSlot) hotplugged() bool {
	return s.QOMPath == "/machine/peripheral/"+vcpuID(s.index)
}

// setLiveVcpus plugs or unplugs vCPUs one at a time, lowest free slot
// first and highest plugged one first (qemuDomainSelectHotplugVcpuEntities),
// and records the new count in the live definition.
func (d *Driver) setLiveVcpus(ctx context.Context, dom *domain, live *libvirtxml.Domain, n uint) error {
	mon, err := dom.monitor()
	if err != nil {
		return err
	}
	cpus, err := mon.QueryHotpluggableCPUs(ctx)
	if err != nil {
		return errQMP(err)
	}
	slots := cpuSlots(cpus)
	online := 0
	for _, s := range slots {
		if s.QOMPath != "" {
			online++
		}
	}
	errGranularity := compat.Errorf(libvirt.ErrInvalidArg, compat.FromQEMU, "target vm vcpu granularity does not allow the desired vcpu count")
	var plug, unplug []cpuSlot
	switch {
	case int(n) > online:
		for _, s := range slots {
			if s.QOMPath == "" && online+len(plug) < int(n) {
				plug = append(plug, s)
			}
		}
		if online+len(plug) != int(n) {
			return errGranularity
		}
	case int(n) < online:
		for i := len(slots) - 1; i >= 0 && online-len(unplug) > int(n); i-- {
			if slots[i].hotplugged() {
				unplug = append(unplug, slots[i])
			}
		}
		if online-len(unplug) != int(n) {
			return errGranularity
		}
	}
	count := online
	defer func() {
		if count != online {
			d.recordVcpus(dom, count)
		}
	}()
	for _, s := range plug {
		if err := mon.DeviceAdd(ctx, cpuDeviceProps(s)); err != nil {
			return errQMP(err)
		}
		count++
	}
	// A vCPU the guest releases late is counted when DEVICE_DELETED
	// comes (libvirt's qemuDomainRemoveVcpuAlias).
	recount := func(ctx context.Context) {
		cpus, err := mon.QueryHotpluggableCPUs(ctx)
		if err != nil {
			d.log.Warn("cannot count the vCPUs after an unplug", "domain", dom.name, "err", err)
			return
		}
		present := 0
		for _, c := range cpus {
			if c.QOMPath != "" {
				present++
			}
		}
		d.recordVcpus(dom, present)
	}
	for _, s := range unplug {
		gone, err := d.unplugThen(ctx, dom, mon, vcpuID(s.index), recount)
		if err != nil {
			return err
		}
		if !gone {
			return compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "vcpu unplug request timed out. Unplug result must be manually inspected in the domain")
		}
		count--
	}
	return nil
}

// cpuDeviceProps is device_add's object for a vCPU slot: its type, its
// id and the topology properties QEMU reported for it.
func cpuDeviceProps(s cpuSlot) json.RawMessage {
	var b strings.Builder
	fmt.Fprintf(&b, `{"driver":%q,"id":%q`, s.Type, vcpuID(s.index))
	keys := make([]string, 0, len(s.Props))
	for k := range s.Props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, `,%q:%d`, k, s.Props[k])
	}
	b.WriteByte('}')
	return json.RawMessage(b.String())
}

// recordVcpus makes the live definition say n vCPUs are online.
func (d *Driver) recordVcpus(dom *domain, n int) {
	err := d.updateLive(dom, func(live *libvirtxml.Domain) *libvirtxml.Domain {
		return withVcpus(live, uint(n), vcpuMax(live))
	})
	if err != nil {
		d.log.Warn("cannot save the vCPU count", "domain", dom.name, "err", err)
	}
}

// unplugWait is how long a detach waits for the guest to let a device go
// (libvirt's qemuDomainRemoveDeviceWaitTime).
var unplugWait = 5 * time.Second
