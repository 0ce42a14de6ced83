package qemu

import (
	"context"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver"
	"github.com/govirtd/govirtd/driver/qemu/domainxml"
	"github.com/govirtd/govirtd/driver/qemu/process"
)

// GetInfo implements driver.Domains. It never waits for a job: status
// queries must answer while a long operation (a migration) runs.
func (d *Driver) GetInfo(ctx context.Context, ref libvirt.Domain) (driver.DomainInfo, error) {
	dom, err := d.get(ref)
	if err != nil {
		return driver.DomainInfo{}, err
	}
	dom.mu.Lock()
	def := dom.live
	if def == nil {
		def = dom.def
	}
	info := driver.DomainInfo{State: dom.state}
	var pid int
	if dom.proc != nil {
		pid = dom.proc.PID()
	}
	dom.mu.Unlock()
	if def != nil {
		if def.Memory != nil {
			info.MaxMem = toKiB(def.Memory.Value, def.Memory.Unit)
		}
		if def.CurrentMemory != nil {
			info.Memory = toKiB(def.CurrentMemory.Value, def.CurrentMemory.Unit)
		}
		if info.Memory == 0 {
			info.Memory = info.MaxMem
		}
		if def.VCPU != nil {
			info.NrVirtCPU = uint16(def.VCPU.Value)
			if def.VCPU.Current != 0 {
				info.NrVirtCPU = uint16(def.VCPU.Current)
			}
		}
	}
	if pid != 0 {
		info.CPUTime = processCPUTime(pid)
	}
	return info, nil
}

// processCPUTime is the user+system time of a process in nanoseconds, as
// libvirt reports it when it has no cgroup accounting.
func processCPUTime(pid int) uint64 {
	u, s := process.CPUTimes(pid)
	return u + s
}

// GetState implements driver.Domains.
func (d *Driver) GetState(ctx context.Context, ref libvirt.Domain) (int32, int32, error) {
	dom, err := d.get(ref)
	if err != nil {
		return 0, 0, err
	}
	dom.mu.Lock()
	defer dom.mu.Unlock()
	return int32(dom.state), dom.reason, nil
}

// GetXMLDesc implements driver.Domains.
func (d *Driver) GetXMLDesc(ctx context.Context, ref libvirt.Domain, flags libvirt.DomainXMLFlags) (string, error) {
	dom, err := d.get(ref)
	if err != nil {
		return "", err
	}
	if flags&^(libvirt.DomainXMLSecure|libvirt.DomainXMLInactive|libvirt.DomainXMLUpdateCPU|libvirt.DomainXMLMigratable) != 0 {
		return "", errUnsupportedFlags(uint32(flags))
	}
	dom.mu.Lock()
	def, live, id := dom.def, dom.live, dom.id
	dom.mu.Unlock()
	opts := domainxml.FormatOptions{
		Secure:       flags&libvirt.DomainXMLSecure != 0,
		Migratable:   flags&libvirt.DomainXMLMigratable != 0,
		ChannelDir:   d.store.ChannelRoot(),
		ConfigListen: d.configListen(),
	}
	src := def
	switch {
	case live != nil && flags&libvirt.DomainXMLInactive == 0:
		opts.Live = &domainxml.LiveInfo{ID: int(id)}
		src = live
	case def != nil:
		opts.Inactive = true
	default:
		// A running transient domain asked for its inactive form: libvirt
		// returns the live definition without runtime details.
		opts.Inactive = true
		src = live
	}
	// Formatting costs a deep copy and two XML passes; management apps ask
	// for the same XML over and over. Definitions are never changed in
	// place once published (a change installs a new one), so the
	// definition's identity is the cache's version.
	key := xmlCacheKey{def: src, flags: flags, id: id}
	dom.mu.Lock()
	text, ok := dom.xmlCache[key]
	dom.mu.Unlock()
	if ok {
		return text, nil
	}
	text, err = domainxml.Format(src, opts)
	if err != nil {
		return "", err
	}
	dom.mu.Lock()
	if dom.xmlCache == nil || len(dom.xmlCache) >= 8 {
		dom.xmlCache = map[xmlCacheKey]string{}
	}
	dom.xmlCache[key] = text
	dom.mu.Unlock()
	return text, nil
}

// xmlCacheKey names one formatted form of one definition.
type xmlCacheKey struct {
	def   *libvirtxml.Domain
	flags libvirt.DomainXMLFlags
	id    int32
}

// GetOSType implements driver.Domains.
func (d *Driver) GetOSType(ctx context.Context, ref libvirt.Domain) (string, error) {
	dom, err := d.get(ref)
	if err != nil {
		return "", err
	}
	def := dom.current()
	if def == nil || def.OS == nil || def.OS.Type == nil || def.OS.Type.Type == "" {
		return "hvm", nil
	}
	return def.OS.Type.Type, nil
}

// IsActive implements driver.Domains.
func (d *Driver) IsActive(ctx context.Context, ref libvirt.Domain) (bool, error) {
	dom, err := d.get(ref)
	if err != nil {
		return false, err
	}
	return dom.active(), nil
}

// IsPersistent implements driver.Domains.
func (d *Driver) IsPersistent(ctx context.Context, ref libvirt.Domain) (bool, error) {
	dom, err := d.get(ref)
	if err != nil {
		return false, err
	}
	dom.mu.Lock()
	defer dom.mu.Unlock()
	return dom.persistent, nil
}

// GetAutostart implements driver.Domains.
func (d *Driver) GetAutostart(ctx context.Context, ref libvirt.Domain) (bool, error) {
	dom, err := d.get(ref)
	if err != nil {
		return false, err
	}
	dom.mu.Lock()
	defer dom.mu.Unlock()
	return dom.autostart, nil
}

// SetAutostart implements driver.Domains.
func (d *Driver) SetAutostart(ctx context.Context, ref libvirt.Domain, on bool) error {
	dom, err := d.get(ref)
	if err != nil {
		return err
	}
	dom.mu.Lock()
	defer dom.mu.Unlock()
	if !dom.persistent {
		return compat.Errorf(libvirt.ErrOperationInvalid, compat.FromDomain, "cannot set autostart for transient domain")
	}
	if err := d.store.SetAutostart(dom.name, on); err != nil {
		return err
	}
	dom.autostart = on
	return nil
}

// toKiB converts a libvirt memory size to KiB (libvirt's units: b, bytes,
// k, KiB, KB, M, MiB, MB, G, GiB, GB, T, TiB, TB; no unit means KiB).
func toKiB(v uint, unit string) uint64 {
	n := uint64(v)
	switch unit {
	case "b", "bytes":
		return n / 1024
	case "KB":
		return n * 1000 / 1024
	case "", "k", "K", "KiB":
		return n
	case "M", "MiB":
		return n << 10
	case "MB":
		return n * 1000 * 1000 / 1024
	case "G", "GiB":
		return n << 20
	case "GB":
		return n * 1000 * 1000 * 1000 / 1024
	case "T", "TiB":
		return n << 30
	case "TB":
		return n * 1000 * 1000 * 1000 * 1000 / 1024
	}
	return n
}
