package hostinfo

import (
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"syscall"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
)

// AllCPUs is VIR_NODE_CPU_STATS_ALL_CPUS.
const AllCPUs = -1

// cpuStatsNum is LINUX_NB_CPU_STATS: kernel, user, idle, iowait.
const cpuStatsNum = 4

// userHZ is the unit of /proc/stat (sysconf(_SC_CLK_TCK)): USER_HZ is 100
// on every Linux architecture libvirt runs QEMU on.
const userHZ = 100

const nsPerTick = 1_000_000_000 / userHZ

// CPUStats is virHostCPUGetStats: the CPU times of one CPU (or all, with
// AllCPUs) from /proc/stat, in nanoseconds. With nparams 0 it returns only
// how many fields there are.
func (f FS) CPUStats(cpu, nparams int) ([]Stat, int, error) {
	data, err := f.read("proc/stat")
	if err != nil {
		return nil, 0, compat.Errorf(libvirt.ErrSystemError, compat.FromNone, "cannot open %s: %s", f.path("proc/stat"), errText(err))
	}
	if nparams == 0 {
		return nil, cpuStatsNum, nil
	}
	if nparams != cpuStatsNum {
		return nil, 0, compat.Errorf(libvirt.ErrInvalidArg, compat.FromNone, "nparams in virHostCPUGetStatsLinux must be equal to %d", cpuStatsNum)
	}
	stats, ok := parseCPUStats(data, cpu)
	if !ok {
		return nil, 0, compat.Errorf(libvirt.ErrInvalidArg, compat.FromNone, "Invalid cpuNum in virHostCPUGetStatsLinux")
	}
	return stats, cpuStatsNum, nil
}

// parseCPUStats finds the "cpu " or "cpuN " line of /proc/stat and turns
// it into libvirt's four times: kernel is system+irq+softirq, user is
// user+nice.
func parseCPUStats(data string, cpu int) ([]Stat, bool) {
	header := "cpu "
	if cpu != AllCPUs {
		header = fmt.Sprintf("cpu%d ", cpu)
	}
	for line := range strings.SplitSeq(data, "\n") {
		if !strings.HasPrefix(line, header) {
			continue
		}
		var v [10]uint64
		n := 0
		for _, s := range strings.Fields(line)[1:] {
			if n == len(v) {
				break
			}
			x, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				break
			}
			v[n] = x
			n++
		}
		if n < 4 {
			continue
		}
		usr, nice, sys, idle, iowait, irq, softirq := v[0], v[1], v[2], v[3], v[4], v[5], v[6]
		return []Stat{
			{"kernel", (sys + irq + softirq) * nsPerTick},
			{"user", (usr + nice) * nsPerTick},
			{"idle", idle * nsPerTick},
			{"iowait", iowait * nsPerTick},
		}, true
	}
	return nil, false
}

// CPUMap is virHostCPUGetMap's data: the number of CPUs the host has
// (highest present CPU + 1) and which of them are online.
func (f FS) CPUMap() (present int, online []int, err error) {
	on, err := f.read("sys/devices/system/cpu/online")
	if err != nil {
		return 0, nil, compat.Errorf(libvirt.ErrSystemError, compat.FromNone, "cannot open %s: %s", f.path("sys/devices/system/cpu/online"), errText(err))
	}
	if online, err = ParseCPUList(on); err != nil {
		return 0, nil, compat.Errorf(libvirt.ErrInternalError, compat.FromNone, "Failed to parse bitmap '%s'", on)
	}
	if pr, err := f.read("sys/devices/system/cpu/present"); err == nil {
		if l, err := ParseCPUList(pr); err == nil && len(l) > 0 {
			present = l[len(l)-1] + 1
		}
	}
	if len(online) > 0 {
		present = max(present, online[len(online)-1]+1)
	}
	return present, online, nil
}

// CPUMapBytes packs CPU numbers into libvirt's cpumap: CPU n is bit n%8 of
// byte n/8, for ncpus CPUs.
func CPUMapBytes(ncpus int, cpus []int) []byte {
	out := make([]byte, (ncpus+7)/8)
	for _, c := range cpus {
		if c >= 0 && c < ncpus {
			out[c/8] |= 1 << (c % 8)
		}
	}
	return out
}

// errText is strerror's wording of a file error.
func errText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		var errno syscall.Errno
		if errors.As(pe.Err, &errno) {
			s := errno.Error()
			return strings.ToUpper(s[:1]) + s[1:]
		}
		return pe.Err.Error()
	}
	return err.Error()
}
