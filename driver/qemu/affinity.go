package qemu

import (
	"context"
	"fmt"
	"os"
	"strconv"

	libvirt "github.com/digitalocean/go-libvirt"
	"golang.org/x/sys/unix"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver/qemu/domainxml"
	"github.com/govirtd/govirtd/driver/qemu/qmp"
)

// applyAffinity pins a freshly started (still paused) QEMU the way libvirt
// does without cgroups (qemuProcessSetupPid with sched_setaffinity):
// every thread to <vcpu cpuset>, the emulator threads to <emulatorpin>,
// each vCPU thread to its <vcpupin> (or the cpuset).
func applyAffinity(ctx context.Context, mon *qmp.Monitor, pid int, def *libvirtxml.Domain) error {
	var all, emulator []int
	vcpus := map[int][]int{}
	var err error
	if def.VCPU != nil && def.VCPU.CPUSet != "" {
		if all, err = domainxml.ParseCPUSet(def.VCPU.CPUSet); err != nil {
			return err
		}
	}
	if t := def.CPUTune; t != nil {
		if t.EmulatorPin != nil {
			if emulator, err = domainxml.ParseCPUSet(t.EmulatorPin.CPUSet); err != nil {
				return err
			}
		}
		for _, p := range t.VCPUPin {
			set, err := domainxml.ParseCPUSet(p.CPUSet)
			if err != nil {
				return err
			}
			vcpus[int(p.VCPU)] = set
		}
	}
	if all == nil && emulator == nil && len(vcpus) == 0 {
		return nil
	}
	if emulator == nil {
		emulator = all
	}
	vcpuThread := map[int]bool{}
	var cpus []qmp.CPUInfo
	if len(vcpus) > 0 || all != nil {
		if cpus, err = mon.QueryCPUsFast(ctx); err != nil {
			return fmt.Errorf("query vCPU threads: %w", err)
		}
		for _, c := range cpus {
			vcpuThread[c.ThreadID] = true
		}
	}
	// Emulator threads: every thread of the process that is not a vCPU.
	if emulator != nil {
		tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		if err != nil {
			return fmt.Errorf("list QEMU threads: %w", err)
		}
		for _, task := range tasks {
			tid, err := strconv.Atoi(task.Name())
			if err != nil || vcpuThread[tid] {
				continue
			}
			if err := setAffinity(tid, emulator, "emulator"); err != nil {
				return err
			}
		}
	}
	for _, c := range cpus {
		set := vcpus[c.CPUIndex]
		if set == nil {
			set = all
		}
		if set == nil {
			continue
		}
		if err := setAffinity(c.ThreadID, set, fmt.Sprintf("vCPU %d", c.CPUIndex)); err != nil {
			return err
		}
	}
	return nil
}

func setAffinity(tid int, cpus []int, what string) error {
	var set unix.CPUSet
	for _, c := range cpus {
		set.Set(c)
	}
	if err := unix.SchedSetaffinity(tid, &set); err != nil {
		// libvirt: virProcessSetAffinity's wording.
		return compat.Errorf(libvirt.ErrSystemError, compat.FromNone, "cannot set CPU affinity on process %d (%s) to %v: %v", tid, what, cpus, err)
	}
	return nil
}
