package caps

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestProbeHostTwoNodes(t *testing.T) {
	hi, err := probeHost(sysfs{root: "testdata/sysroot-2node"}, "x86_64")
	if err != nil {
		t.Fatal(err)
	}
	want := NodeInfo{
		Model: "x86_64", Memory: 16318336, CPUs: 8,
		MHz:   1999, // last "cpu MHz" line, fraction dropped, like libvirt
		Nodes: 2, Sockets: 1, Cores: 2, Threads: 2,
	}
	if hi.node != want {
		t.Errorf("NodeInfo = %+v\nwant       %+v", hi.node, want)
	}
	if hi.cpu.vendorID != "GenuineIntel" || hi.cpu.family != 6 || hi.cpu.model != 85 ||
		hi.cpu.stepping != 7 || hi.cpu.microcode == nil || *hi.cpu.microcode != 0x5003604 {
		t.Errorf("cpuinfo = %+v", hi.cpu)
	}
	if !reflect.DeepEqual(hi.pageSizes, []int{4, 2048, 1048576}) {
		t.Errorf("page sizes = %v", hi.pageSizes)
	}
	if !hi.iommu {
		t.Error("iommu groups present but iommu not reported")
	}
	if len(hi.cells) != 2 {
		t.Fatalf("%d cells, want 2", len(hi.cells))
	}
	c1 := hi.cells[1]
	if c1.id != 1 || c1.memKiB != 8159168 {
		t.Errorf("cell 1 = id %d mem %d", c1.id, c1.memKiB)
	}
	wantPages := []pageCount{{4, 8159168 / 4}, {2048, 32}, {1048576, 1}}
	if !reflect.DeepEqual(c1.pages, wantPages) {
		t.Errorf("cell 1 pages = %v, want %v", c1.pages, wantPages)
	}
	if !reflect.DeepEqual(c1.distances, []distance{{0, 21}, {1, 10}}) {
		t.Errorf("cell 1 distances = %v", c1.distances)
	}
	if len(c1.cpus) != 4 {
		t.Fatalf("cell 1 has %d cpus", len(c1.cpus))
	}
	cpu6 := c1.cpus[2]
	if cpu6.id != 6 || cpu6.socket != 1 || cpu6.core != 0 || formatCPUList(cpu6.siblings) != "4,6" || !cpu6.known {
		t.Errorf("cpu 6 = %+v", cpu6)
	}
}

// writeTree creates files (path -> content) under a fresh directory.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, content := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// flatHost is a non-NUMA host: no /sys/devices/system/node at all.
func flatHost(cpus int, online string, threadsPerCore int) map[string]string {
	f := map[string]string{
		"proc/meminfo":                  "MemTotal:        2048000 kB\n",
		"proc/cpuinfo":                  "processor\t: 0\nvendor_id\t: AuthenticAMD\n",
		"sys/devices/system/cpu/online": online + "\n",
	}
	for c := range cpus {
		d := fmt.Sprintf("sys/devices/system/cpu/cpu%d/topology/", c)
		core := c / threadsPerCore
		first := core * threadsPerCore
		f[d+"physical_package_id"] = "0\n"
		f[d+"core_id"] = fmt.Sprint(core) + "\n"
		f[d+"thread_siblings_list"] = formatCPUList(seq(first, first+threadsPerCore-1)) + "\n"
	}
	return f
}

func seq(a, b int) []int {
	var out []int
	for i := a; i <= b; i++ {
		out = append(out, i)
	}
	return out
}

func TestNodeInfoWithoutNUMA(t *testing.T) {
	root := writeTree(t, flatHost(4, "0-3", 2))
	hi, err := probeHost(sysfs{root: root}, "x86_64")
	if err != nil {
		t.Fatal(err)
	}
	want := NodeInfo{Model: "x86_64", Memory: 2048000, CPUs: 4, MHz: 0, Nodes: 1, Sockets: 1, Cores: 2, Threads: 2}
	if hi.node != want {
		t.Errorf("NodeInfo = %+v, want %+v", hi.node, want)
	}
	// The fake cell carries all memory and CPUs but no pages or distances.
	if len(hi.cells) != 1 || hi.cells[0].memKiB != 2048000 || len(hi.cells[0].cpus) != 4 ||
		hi.cells[0].pages != nil || hi.cells[0].distances != nil {
		t.Errorf("fake cell = %+v", hi.cells)
	}
	if hi.iommu {
		t.Error("iommu reported without iommu groups")
	}
}

// An offline CPU still counts towards the topology product, as in libvirt.
func TestNodeInfoOfflineCPU(t *testing.T) {
	root := writeTree(t, flatHost(4, "0-2", 2))
	hi, err := probeHost(sysfs{root: root}, "x86_64")
	if err != nil {
		t.Fatal(err)
	}
	want := NodeInfo{Model: "x86_64", Memory: 2048000, CPUs: 3, Nodes: 1, Sockets: 1, Cores: 2, Threads: 2}
	if hi.node != want {
		t.Errorf("NodeInfo = %+v, want %+v", hi.node, want)
	}
}

// When the counts do not multiply out (here: thread siblings that also have
// distinct core ids, as on AMD Bulldozer) libvirt reports the flat topology
// nodes=1 sockets=1 cores=cpus threads=1.
func TestNodeInfoInconsistentTopology(t *testing.T) {
	f := flatHost(4, "0-3", 2)
	for c := range 4 {
		f[fmt.Sprintf("sys/devices/system/cpu/cpu%d/topology/core_id", c)] = fmt.Sprint(c) + "\n"
	}
	root := writeTree(t, f)
	hi, err := probeHost(sysfs{root: root}, "x86_64")
	if err != nil {
		t.Fatal(err)
	}
	n := hi.node
	if n.CPUs != 4 || n.Nodes != 1 || n.Sockets != 1 || n.Cores != 4 || n.Threads != 1 {
		t.Errorf("NodeInfo = %+v, want cpus 4 and flat 1/1/4/1", n)
	}
	if n.Nodes*n.Sockets*n.Cores*n.Threads != n.CPUs {
		t.Errorf("topology product != cpus: %+v", n)
	}
}

func TestProbeHostNeedsMeminfo(t *testing.T) {
	root := writeTree(t, map[string]string{"proc/cpuinfo": ""})
	if _, err := probeHost(sysfs{root: root}, "x86_64"); err == nil {
		t.Error("missing /proc/meminfo accepted")
	}
}
