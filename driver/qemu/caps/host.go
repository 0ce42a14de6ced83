package caps

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/govirtd/govirtd/driver/hostinfo"
)

// sysfs wraps a root directory so every host file is read below SysRoot;
// tests point it at a fixture tree instead of the real /proc and /sys.
type sysfs struct{ root string }

func (s sysfs) path(p string) string { return filepath.Join(s.root, p) }

func (s sysfs) read(p string) (string, error) {
	b, err := os.ReadFile(s.path(p))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// readInt returns def when the file is absent or unparsable: libvirt treats
// missing topology files (old kernels, offline CPUs) as id 0 rather than as
// an error, and so do we.
func (s sysfs) readInt(p string, def int) int {
	v, err := s.read(p)
	if err != nil {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return def
	}
	return n
}

// cpuInfo is what we take from /proc/cpuinfo.
type cpuInfo struct {
	processors int
	mhz        int32 // libvirt keeps the value of the last "cpu MHz" line
	vendorID   string
	family     int
	model      int
	stepping   int
	microcode  *uint64
}

func parseCPUInfo(data string) cpuInfo {
	var ci cpuInfo
	first := true // vendor/signature/microcode come from the first CPU only
	sc := bufio.NewScanner(strings.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		key = strings.TrimSpace(key)
		val = strings.TrimSpace(val)
		switch key {
		case "processor":
			if ci.processors > 0 {
				first = false
			}
			ci.processors++
		case "cpu MHz":
			// libvirt parses the integer part and ignores the fraction; it
			// overwrites the value for every CPU so the last one wins.
			intPart, _, _ := strings.Cut(val, ".")
			if n, err := strconv.ParseUint(intPart, 10, 31); err == nil {
				ci.mhz = int32(n)
			}
		}
		if !first {
			continue
		}
		switch key {
		case "vendor_id":
			ci.vendorID = val
		case "cpu family":
			ci.family, _ = strconv.Atoi(val)
		case "model":
			ci.model, _ = strconv.Atoi(val)
		case "stepping":
			ci.stepping, _ = strconv.Atoi(val)
		case "microcode":
			if n, err := strconv.ParseUint(val, 0, 64); err == nil {
				ci.microcode = &n
			}
		}
	}
	return ci
}

// parseMeminfoKiB returns the value of key (e.g. "MemTotal") in KiB from
// /proc/meminfo or a NUMA node's meminfo ("Node 0 MemTotal: ... kB").
func parseMeminfoKiB(data, key string) (uint64, bool) { return hostinfo.ParseMeminfoKiB(data, key) }

// parseCPUList parses the kernel's cpulist format ("0-3,8,10-11").
func parseCPUList(s string) ([]int, error) { return hostinfo.ParseCPUList(s) }

// formatCPUList renders CPUs the way libvirt's virBitmapFormat does:
// ascending, consecutive runs collapsed to "a-b".
func formatCPUList(cpus []int) string {
	c := append([]int(nil), cpus...)
	sort.Ints(c)
	var b strings.Builder
	for i := 0; i < len(c); {
		j := i
		for j+1 < len(c) && c[j+1] == c[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		if j == i {
			fmt.Fprintf(&b, "%d", c[i])
		} else {
			fmt.Fprintf(&b, "%d-%d", c[i], c[j])
		}
		i = j + 1
	}
	return b.String()
}

// listIndexed returns the N of every entry "<prefix>N" in dir, sorted.
func (s sysfs) listIndexed(dir, prefix string) []int {
	ents, err := os.ReadDir(s.path(dir))
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok {
			continue
		}
		if n, err := strconv.Atoi(rest); err == nil && n >= 0 {
			out = append(out, n)
		}
	}
	sort.Ints(out)
	return out
}

// cpuTopo is one logical CPU's position as sysfs reports it.
type cpuTopo struct {
	id, socket, die, core int
	siblings              []int
	known                 bool // topology directory was readable
}

func (s sysfs) cpuTopology(cpu int) cpuTopo {
	dir := fmt.Sprintf("sys/devices/system/cpu/cpu%d/topology", cpu)
	t := cpuTopo{id: cpu}
	if _, err := os.Stat(s.path(dir)); err != nil {
		t.siblings = []int{cpu}
		return t
	}
	t.known = true
	t.socket = s.readInt(dir+"/physical_package_id", 0)
	t.die = s.readInt(dir+"/die_id", 0)
	t.core = s.readInt(dir+"/core_id", 0)
	if v, err := s.read(dir + "/thread_siblings_list"); err == nil {
		if l, err := parseCPUList(v); err == nil && len(l) > 0 {
			t.siblings = l
		}
	}
	if len(t.siblings) == 0 {
		t.siblings = []int{cpu}
	}
	return t
}

// numaCell is one NUMA node (or the single fake node of a non-NUMA host).
type numaCell struct {
	id        int
	memKiB    uint64
	pages     []pageCount // nil for the fake cell, like libvirt
	distances []distance
	cpus      []cpuTopo
}

type pageCount struct {
	sizeKiB int
	count   uint64
}

type distance struct{ id, value int }

// hostInfo is everything probed from /proc and /sys.
type hostInfo struct {
	arch      string
	node      NodeInfo
	cpu       cpuInfo
	pageSizes []int // KiB, ascending, system page first
	cells     []numaCell
	iommu     bool
}

// systemPageKiB is fixed: every x86 Linux host uses 4 KiB base pages, and
// keeping it constant lets SysRoot fixtures produce stable output.
const systemPageKiB = 4

func probeHost(s sysfs, arch string) (*hostInfo, error) {
	h := &hostInfo{arch: arch}

	meminfo, err := s.read("proc/meminfo")
	if err != nil {
		return nil, fmt.Errorf("reading host memory size: %w", err)
	}
	memKiB, ok := parseMeminfoKiB(meminfo, "MemTotal")
	if !ok {
		return nil, fmt.Errorf("no MemTotal in %s", s.path("proc/meminfo"))
	}

	// A missing /proc/cpuinfo only costs us MHz and the CPU vendor.
	if data, err := s.read("proc/cpuinfo"); err == nil {
		h.cpu = parseCPUInfo(data)
	}

	h.node = s.nodeInfo(arch, memKiB, h.cpu)
	h.pageSizes = s.hugePageSizes()
	h.cells = s.numaCells(memKiB, h.pageSizes)

	// libvirt reports IOMMU support when the kernel created any IOMMU group.
	if ents, err := os.ReadDir(s.path("sys/kernel/iommu_groups")); err == nil && len(ents) > 0 {
		h.iommu = true
	}
	return h, nil
}

// onlineCPUs returns the online CPUs, falling back to the cpuN directories
// and finally to the processor count of /proc/cpuinfo.
func (s sysfs) onlineCPUs(ci cpuInfo) []int {
	if v, err := s.read("sys/devices/system/cpu/online"); err == nil {
		if l, err := parseCPUList(v); err == nil && len(l) > 0 {
			return l
		}
	}
	if l := s.listIndexed("sys/devices/system/cpu", "cpu"); len(l) > 0 {
		return l
	}
	n := max(ci.processors, 1)
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// nodeInfo mirrors libvirt's virHostCPUGetInfoPopulateLinux: per NUMA node
// count distinct sockets, the most cores in any socket and the most threads
// per core, keep the maxima over nodes, and if nodes*sockets*cores*threads
// does not add up to the CPU count report the flat 1/1/cpus/1 topology, which
// is how libvirt tells users to look at the capabilities XML instead.
func (s sysfs) nodeInfo(arch string, memKiB uint64, ci cpuInfo) NodeInfo {
	online := s.onlineCPUs(ci)
	isOnline := make(map[int]bool, len(online))
	for _, c := range online {
		isOnline[c] = true
	}

	var nodes, cpus, sockets, cores, threads, offline int
	tally := func(members []int) {
		sockCores := map[int]map[int]bool{}
		for _, c := range members {
			if !isOnline[c] {
				offline++
				continue
			}
			cpus++
			t := s.cpuTopology(c)
			if sockCores[t.socket] == nil {
				sockCores[t.socket] = map[int]bool{}
			}
			sockCores[t.socket][t.core] = true
			threads = max(threads, len(t.siblings))
		}
		sockets = max(sockets, len(sockCores))
		for _, cs := range sockCores {
			cores = max(cores, len(cs))
		}
	}

	for _, n := range s.listIndexed("sys/devices/system/node", "node") {
		nodes++
		tally(s.listIndexed(fmt.Sprintf("sys/devices/system/node/node%d", n), "cpu"))
	}
	if nodes == 0 || cpus == 0 {
		// Not a NUMA-aware kernel (or no sysfs at all): one node holding
		// every CPU.
		nodes, cpus, sockets, cores, threads, offline = 1, 0, 0, 0, 0, 0
		members := s.listIndexed("sys/devices/system/cpu", "cpu")
		if len(members) == 0 {
			members = online
		}
		tally(members)
	}
	if nodes*sockets*cores*threads != cpus+offline {
		nodes, sockets, cores, threads = 1, 1, cpus+offline, 1
	}

	model := arch
	if len(model) > 31 { // virNodeInfo.model is char[32], NUL-terminated
		model = model[:31]
	}
	return NodeInfo{
		Model:   model,
		Memory:  memKiB,
		CPUs:    int32(cpus),
		MHz:     ci.mhz,
		Nodes:   int32(nodes),
		Sockets: int32(sockets),
		Cores:   int32(cores),
		Threads: int32(threads),
	}
}

// hugePageSizes lists the system page size followed by every huge page size
// the kernel supports, ascending, as libvirt's <cpu><pages> does.
func (s sysfs) hugePageSizes() []int {
	sizes := []int{systemPageKiB}
	ents, err := os.ReadDir(s.path("sys/kernel/mm/hugepages"))
	if err != nil {
		return sizes
	}
	for _, e := range ents {
		if kb, ok := hugePageDirSize(e.Name()); ok {
			sizes = append(sizes, kb)
		}
	}
	sort.Ints(sizes[1:])
	return sizes
}

// hugePageDirSize parses "hugepages-2048kB".
func hugePageDirSize(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, "hugepages-")
	if !ok {
		return 0, false
	}
	rest, ok = strings.CutSuffix(rest, "kB")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	return n, err == nil && n > 0
}

// numaCells builds <topology><cells>. With NUMA sysfs present every node is
// a cell carrying its own memory, page counts and distances; otherwise a
// single fake cell with all memory and CPUs and no pages or distances is
// produced, matching libvirt's virCapabilitiesHostNUMAInitFake.
func (s sysfs) numaCells(memKiB uint64, pageSizes []int) []numaCell {
	nodeIDs := s.listIndexed("sys/devices/system/node", "node")
	var cells []numaCell
	for _, n := range nodeIDs {
		dir := fmt.Sprintf("sys/devices/system/node/node%d", n)
		var members []int
		if v, err := s.read(dir + "/cpulist"); err == nil {
			members, _ = parseCPUList(v)
		} else {
			members = s.listIndexed(dir, "cpu")
		}
		cell := numaCell{id: n}
		if mi, err := s.read(dir + "/meminfo"); err == nil {
			cell.memKiB, _ = parseMeminfoKiB(mi, "MemTotal")
		}
		for _, sz := range pageSizes {
			var cnt uint64
			if sz == systemPageKiB {
				// libvirt does not subtract huge pages here either.
				cnt = cell.memKiB / systemPageKiB
			} else if v, err := s.read(fmt.Sprintf("%s/hugepages/hugepages-%dkB/nr_hugepages", dir, sz)); err == nil {
				cnt, _ = strconv.ParseUint(v, 10, 64)
			}
			cell.pages = append(cell.pages, pageCount{sizeKiB: sz, count: cnt})
		}
		if v, err := s.read(dir + "/distance"); err == nil {
			// The kernel lists distances in node-id order of online nodes.
			for i, f := range strings.Fields(v) {
				d, err := strconv.Atoi(f)
				if err != nil || i >= len(nodeIDs) {
					break
				}
				cell.distances = append(cell.distances, distance{id: nodeIDs[i], value: d})
			}
		}
		for _, c := range members {
			cell.cpus = append(cell.cpus, s.cpuTopology(c))
		}
		cells = append(cells, cell)
	}
	if len(cells) > 0 {
		return cells
	}

	cell := numaCell{id: 0, memKiB: memKiB}
	members := s.listIndexed("sys/devices/system/cpu", "cpu")
	if len(members) == 0 {
		members = s.onlineCPUs(cpuInfo{})
	}
	for _, c := range members {
		cell.cpus = append(cell.cpus, s.cpuTopology(c))
	}
	return []numaCell{cell}
}
