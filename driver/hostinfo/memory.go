package hostinfo

import (
	"fmt"
	"strconv"
	"strings"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
)

// Stat is one field of virNodeCPUStats or virNodeMemoryStats.
type Stat struct {
	Field string
	Value uint64
}

// AllCells is VIR_NODE_MEMORY_STATS_ALL_CELLS.
const AllCells = -1

// nodeFreeBytes is libnuma's numa_node_size64 free figure: the node's
// MemFree in bytes.
func (f FS) nodeFreeBytes(node int) (uint64, bool) {
	data, err := f.read(fmt.Sprintf("sys/devices/system/node/node%d/meminfo", node))
	if err != nil {
		return 0, false
	}
	kib, ok := ParseMeminfoKiB(data, "MemFree")
	return kib * 1024, ok
}

// hostFreeBytes is /proc/meminfo's MemFree in bytes (what
// sysconf(_SC_AVPHYS_PAGES) * page size gives libvirt without NUMA).
func (f FS) hostFreeBytes() (uint64, error) {
	data, err := f.read("proc/meminfo")
	if err != nil {
		return 0, compat.Errorf(libvirt.ErrSystemError, compat.FromNone, "cannot open %s: %v", f.path("proc/meminfo"), errText(err))
	}
	kib, ok := ParseMeminfoKiB(data, "MemFree")
	if !ok {
		return 0, compat.Errorf(libvirt.ErrInternalError, compat.FromNone, "no MemFree in %s", f.path("proc/meminfo"))
	}
	return kib * 1024, nil
}

// FreeMemory is virHostMemGetFreeMemory: the free memory of every NUMA
// node added up, or the host's MemFree without NUMA, in bytes.
func (f FS) FreeMemory() (uint64, error) {
	nodes := f.numaNodes()
	if len(nodes) == 0 {
		return f.hostFreeBytes()
	}
	var total uint64
	for n := 0; n <= nodes[len(nodes)-1]; n++ {
		if b, ok := f.nodeFreeBytes(n); ok {
			total += b
		}
	}
	return total, nil
}

// CellsFreeMemory is virHostMemGetCellsFree: the free memory in bytes of
// at most maxCells cells from startCell on. A host without NUMA sysfs is
// one cell 0 (as libvirt reports it in the capabilities).
func (f FS) CellsFreeMemory(startCell, maxCells int) ([]uint64, error) {
	nodes := f.numaNodes()
	maxCell := 0
	if len(nodes) > 0 {
		maxCell = nodes[len(nodes)-1]
	}
	if startCell > maxCell {
		return nil, compat.Errorf(libvirt.ErrInternalError, compat.FromNone, "start cell %d out of range (0-%d)", startCell, maxCell)
	}
	last := min(startCell+maxCells-1, maxCell)
	var out []uint64
	for n := startCell; n <= last; n++ {
		var mem uint64
		if len(nodes) == 0 {
			b, err := f.hostFreeBytes()
			if err != nil {
				return nil, err
			}
			mem = b
		} else if b, ok := f.nodeFreeBytes(n); ok {
			mem = b
		}
		out = append(out, mem)
	}
	return out, nil
}

// Number of fields virHostMemGetStatsLinux reports.
const (
	memStatsAll  = 4 // total, free, buffers, cached
	memStatsCell = 2 // total, free
)

var memFields = []struct{ hdr, field string }{
	{"MemTotal:", "total"},
	{"MemFree:", "free"},
	{"Buffers:", "buffers"},
	{"Cached:", "cached"},
}

// MemoryStats is virHostMemGetStats: /proc/meminfo (cell AllCells) or a
// NUMA node's meminfo, in KiB. With nparams 0 it returns only how many
// fields there are. A host without NUMA answers cell 0 for the whole host,
// as libvirt does.
func (f FS) MemoryStats(cell, nparams int) ([]Stat, int, error) {
	nodes := f.numaNodes()
	if len(nodes) == 0 && cell == 0 {
		cell = AllCells
	}
	path := "proc/meminfo"
	nr := memStatsAll
	if cell != AllCells {
		if len(nodes) == 0 {
			return nil, 0, compat.Errorf(libvirt.ErrInternalError, compat.FromNone, "NUMA isn't available on this host")
		}
		if maxNode := nodes[len(nodes)-1]; cell > maxNode {
			return nil, 0, compat.Errorf(libvirt.ErrInvalidArg, compat.FromNone, "cellNum in virHostMemGetStats must be less than or equal to %d", maxNode)
		}
		path = fmt.Sprintf("sys/devices/system/node/node%d/meminfo", cell)
		nr = memStatsCell
	}
	data, err := f.read(path)
	if err != nil {
		return nil, 0, compat.Errorf(libvirt.ErrSystemError, compat.FromNone, "cannot open %s: %s", f.path(path), errText(err))
	}
	if nparams == 0 {
		return nil, nr, nil
	}
	if nparams != nr {
		return nil, 0, compat.Errorf(libvirt.ErrInvalidArg, compat.FromNone, "nparams in virHostMemGetStatsLinux must be %d", nr)
	}
	stats, err := parseMemStats(data, nr)
	return stats, nr, err
}

// parseMemStats follows virHostMemGetStatsLinux: fields in the order the
// file lists them, until nr are found.
func parseMemStats(data string, nr int) ([]Stat, error) {
	out := make([]Stat, 0, nr)
	for line := range strings.SplitSeq(data, "\n") {
		if rest, ok := strings.CutPrefix(line, "Node "); ok {
			// "Node 0 MemTotal: ..." in a NUMA node's meminfo.
			_, rest, ok = strings.Cut(rest, " ")
			if !ok {
				return nil, compat.Errorf(libvirt.ErrInternalError, compat.FromNone, "no prefix found")
			}
			line = rest
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		val, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			continue
		}
		for _, c := range memFields {
			if f[0] == c.hdr {
				out = append(out, Stat{Field: c.field, Value: val})
				break
			}
		}
		if len(out) >= nr {
			break
		}
	}
	if len(out) == 0 {
		return nil, compat.Errorf(libvirt.ErrInternalError, compat.FromNone, "no available memory line found")
	}
	// libvirt sends the unfilled entries as they are: empty and zero.
	for len(out) < nr {
		out = append(out, Stat{})
	}
	return out, nil
}
