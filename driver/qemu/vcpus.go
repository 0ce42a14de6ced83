package qemu

import (
	"context"
	"fmt"
	"slices"
	"sort"

	libvirt "github.com/digitalocean/go-libvirt"
	"golang.org/x/sys/unix"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver"
	"github.com/govirtd/govirtd/driver/qemu/domainxml"
	"github.com/govirtd/govirtd/driver/qemu/process"
)

// hostCPUs is the number of host CPUs pinning maps cover
// (virHostCPUGetCount).
func (d *Driver) hostCPUs() int { return int(d.host.NodeInfo().CPUs) }

// GetVcpus implements driver.DomainStats as libvirt's
// qemuDomainHelperGetVcpus: each online vCPU's thread (query-cpus-fast),
// its CPU time and current host CPU (/proc/PID/task/TID/stat) and the
// affinity the kernel has for it.
func (d *Driver) GetVcpus(ctx context.Context, ref libvirt.Domain, max int) ([]driver.Vcpu, error) {
	dom, err := d.get(ref)
	if err != nil {
		return nil, err
	}
	mon, err := dom.monitor()
	if err != nil {
		return nil, compat.Errorf(libvirt.ErrOperationInvalid, compat.FromQEMU, "cannot retrieve vcpu information for inactive domain")
	}
	dom.mu.Lock()
	pid := 0
	if dom.proc != nil {
		pid = dom.proc.PID()
	}
	dom.mu.Unlock()
	cpus, err := mon.QueryCPUsFast(ctx)
	if err != nil {
		return nil, err
	}
	sort.Slice(cpus, func(i, j int) bool { return cpus[i].CPUIndex < cpus[j].CPUIndex })
	var out []driver.Vcpu
	for _, c := range cpus {
		if len(out) >= max {
			break
		}
		st, err := process.ReadThreadStat(pid, c.ThreadID)
		if err != nil {
			return nil, compat.Errorf(libvirt.ErrSystemError, compat.FromQEMU, "cannot get vCPU placement & pCPU time: %v", err)
		}
		var set unix.CPUSet
		if err := unix.SchedGetaffinity(c.ThreadID, &set); err != nil {
			return nil, compat.Errorf(libvirt.ErrSystemError, compat.FromNone, "cannot get CPU affinity of process %d: %v", c.ThreadID, err)
		}
		var aff []int
		for cpu := 0; cpu < len(set)*64; cpu++ {
			if set.IsSet(cpu) {
				aff = append(aff, cpu)
			}
		}
		out = append(out, driver.Vcpu{
			Info:     libvirt.VcpuInfo{Number: uint32(c.CPUIndex), State: int32(libvirt.VCPURunning), CPUTime: st.CPUTime, CPU: int32(st.CPU)},
			Affinity: aff,
		})
	}
	return out, nil
}

// GetVcpuPinInfo implements driver.DomainStats as libvirt's
// virDomainDefGetVcpuPinInfoHelper: per vCPU its <vcpupin>, else the
// <vcpu cpuset>, else every host CPU.
func (d *Driver) GetVcpuPinInfo(ctx context.Context, ref libvirt.Domain, max int, flags uint32) ([][]int, error) {
	if flags&^(affectLive|affectConfig) != 0 {
		return nil, errUnsupportedFlags(flags)
	}
	dom, err := d.get(ref)
	if err != nil {
		return nil, err
	}
	def, err := dom.impactDef(flags)
	if err != nil {
		return nil, err
	}
	return vcpuPinning(def, d.hostCPUs(), max)
}

func vcpuPinning(def *libvirtxml.Domain, hostCPUs, max int) ([][]int, error) {
	all := make([]int, hostCPUs)
	for i := range all {
		all[i] = i
	}
	dflt := all
	if def.VCPU != nil && def.VCPU.CPUSet != "" {
		set, err := domainxml.ParseCPUSet(def.VCPU.CPUSet)
		if err != nil {
			return nil, err
		}
		dflt = set
	}
	pins := map[uint][]int{}
	if def.CPUTune != nil {
		for _, p := range def.CPUTune.VCPUPin {
			set, err := domainxml.ParseCPUSet(p.CPUSet)
			if err != nil {
				return nil, err
			}
			pins[p.VCPU] = set
		}
	}
	var out [][]int
	for i := uint(0); i < vcpuMax(def) && len(out) < max; i++ {
		if set, ok := pins[i]; ok {
			out = append(out, set)
		} else {
			out = append(out, dflt)
		}
	}
	return out, nil
}

// vcpuMax is the domain's maximum vCPU count.
func vcpuMax(def *libvirtxml.Domain) uint {
	if def.VCPU == nil || def.VCPU.Value == 0 {
		return 1
	}
	return def.VCPU.Value
}

// PinVcpu implements driver.DomainStats as libvirt's
// qemuDomainPinVcpuFlags: the live vCPU thread is moved with
// sched_setaffinity (govirtd runs without cgroups, as libvirt does when it
// has none) and the live and/or persistent definition record the pinning
// as <cputune><vcpupin>.
func (d *Driver) PinVcpu(ctx context.Context, ref libvirt.Domain, vcpu uint32, cpus []int, flags uint32) error {
	if flags&^(affectLive|affectConfig) != 0 {
		return errUnsupportedFlags(flags)
	}
	dom, err := d.get(ref)
	if err != nil {
		return err
	}
	return withJob(ctx, dom, "remoteDispatchDomainPinVcpuFlags", func() error {
		live, config, err := dom.impactDefs(flags)
		if err != nil {
			return err
		}
		if len(cpus) == 0 {
			return compat.Errorf(libvirt.ErrInvalidArg, compat.FromQEMU, "Empty cpu list for pinning")
		}
		if live != nil {
			if uint(vcpu) >= vcpuMax(live) {
				return compat.Errorf(libvirt.ErrInvalidArg, compat.FromQEMU, "vcpu %d is out of range of live cpu count %d", vcpu, vcpuMax(live))
			}
			mon, err := dom.monitor()
			if err != nil {
				return err
			}
			threads, err := mon.QueryCPUsFast(ctx)
			if err != nil {
				return err
			}
			for _, c := range threads {
				if c.CPUIndex == int(vcpu) {
					if err := setAffinity(c.ThreadID, cpus, fmt.Sprintf("vCPU %d", vcpu)); err != nil {
						return err
					}
				}
			}
			nl, err := withVcpuPin(live, vcpu, cpus)
			if err != nil {
				return err
			}
			if err := d.saveLive(dom, live, nl); err != nil {
				return err
			}
		}
		if config != nil {
			if uint(vcpu) >= vcpuMax(config) {
				return compat.Errorf(libvirt.ErrInvalidArg, compat.FromQEMU, "vcpu %d is out of range of persistent cpu count %d", vcpu, vcpuMax(config))
			}
			nc, err := withVcpuPin(config, vcpu, cpus)
			if err != nil {
				return err
			}
			return d.saveConfig(dom, config, nc)
		}
		return nil
	})
}

// withVcpuPin is a copy of def with vCPU vcpu pinned to cpus. As libvirt
// formats it, a pinning equal to <vcpu cpuset> needs no <vcpupin>.
func withVcpuPin(def *libvirtxml.Domain, vcpu uint32, cpus []int) (*libvirtxml.Domain, error) {
	c, err := cloneDef(def)
	if err != nil {
		return nil, err
	}
	if c.CPUTune == nil {
		c.CPUTune = &libvirtxml.DomainCPUTune{}
	}
	pins := slices.DeleteFunc(c.CPUTune.VCPUPin, func(p libvirtxml.DomainCPUTuneVCPUPin) bool { return p.VCPU == uint(vcpu) })
	same := false
	if c.VCPU != nil && c.VCPU.CPUSet != "" {
		if set, err := domainxml.ParseCPUSet(c.VCPU.CPUSet); err == nil && slices.Equal(set, cpus) {
			same = true
		}
	}
	if !same {
		pins = append(pins, libvirtxml.DomainCPUTuneVCPUPin{VCPU: uint(vcpu), CPUSet: formatCPUSet(cpus)})
		slices.SortFunc(pins, func(a, b libvirtxml.DomainCPUTuneVCPUPin) int { return int(a.VCPU) - int(b.VCPU) })
	}
	c.CPUTune.VCPUPin = pins
	if len(pins) == 0 && c.CPUTune.EmulatorPin == nil {
		c.CPUTune = nil
	}
	return c, nil
}

// formatCPUSet renders sorted CPUs as virBitmapFormat does ("0-2,5").
func formatCPUSet(cpus []int) string {
	s := ""
	for i := 0; i < len(cpus); {
		j := i
		for j+1 < len(cpus) && cpus[j+1] == cpus[j]+1 {
			j++
		}
		if s != "" {
			s += ","
		}
		if j > i {
			s += fmt.Sprintf("%d-%d", cpus[i], cpus[j])
		} else {
			s += fmt.Sprint(cpus[i])
		}
		i = j + 1
	}
	return s
}
