package hostinfo

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
)

var (
	numa2 = FS{Root: "testdata/numa2"}
	flat  = FS{Root: "testdata/flat"}
)

func wantErr(t *testing.T, err error, code libvirt.ErrorNumber, msg string) {
	t.Helper()
	if !compat.Is(err, code) {
		t.Fatalf("err = %v, want code %d", err, code)
	}
	if got := compat.As(err).Message(); !strings.Contains(got, msg) {
		t.Errorf("message %q, want %q", got, msg)
	}
}

func TestFreeMemory(t *testing.T) {
	if got, err := numa2.FreeMemory(); err != nil || got != (6000000+6000001)*1024 {
		t.Errorf("numa2 FreeMemory = %d, %v", got, err)
	}
	if got, err := flat.FreeMemory(); err != nil || got != 6207008*1024 {
		t.Errorf("flat FreeMemory = %d, %v", got, err)
	}
}

func TestCellsFreeMemory(t *testing.T) {
	got, err := numa2.CellsFreeMemory(0, 8)
	if err != nil || !reflect.DeepEqual(got, []uint64{6000000 * 1024, 6000001 * 1024}) {
		t.Errorf("cells 0..7 = %v, %v", got, err)
	}
	got, err = numa2.CellsFreeMemory(1, 1)
	if err != nil || !reflect.DeepEqual(got, []uint64{6000001 * 1024}) {
		t.Errorf("cell 1 = %v, %v", got, err)
	}
	_, err = numa2.CellsFreeMemory(2, 1)
	wantErr(t, err, libvirt.ErrInternalError, "start cell 2 out of range (0-1)")

	got, err = flat.CellsFreeMemory(0, 1)
	if err != nil || !reflect.DeepEqual(got, []uint64{6207008 * 1024}) {
		t.Errorf("flat cell 0 = %v, %v", got, err)
	}
	_, err = flat.CellsFreeMemory(1, 1)
	wantErr(t, err, libvirt.ErrInternalError, "start cell 1 out of range (0-0)")
}

func TestMemoryStats(t *testing.T) {
	if _, n, err := numa2.MemoryStats(AllCells, 0); err != nil || n != 4 {
		t.Errorf("count all = %d, %v", n, err)
	}
	got, _, err := numa2.MemoryStats(AllCells, 4)
	want := []Stat{{"total", 16318336}, {"free", 12000000}, {"buffers", 123456}, {"cached", 2345678}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("all cells = %v, %v", got, err)
	}
	if _, n, err := numa2.MemoryStats(1, 0); err != nil || n != 2 {
		t.Errorf("count cell 1 = %d, %v", n, err)
	}
	got, _, err = numa2.MemoryStats(1, 2)
	if want := []Stat{{"total", 8159168}, {"free", 6000001}}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("cell 1 = %v, %v", got, err)
	}
	_, _, err = numa2.MemoryStats(2, 2)
	wantErr(t, err, libvirt.ErrInvalidArg, "cellNum in virHostMemGetStats must be less than or equal to 1")
	_, _, err = numa2.MemoryStats(AllCells, 2)
	wantErr(t, err, libvirt.ErrInvalidArg, "nparams in virHostMemGetStatsLinux must be 4")

	// Without NUMA, cell 0 is the whole host.
	got, n, err := flat.MemoryStats(0, 4)
	if want := []Stat{{"total", 7038792}, {"free", 6207008}, {"buffers", 1000}, {"cached", 200000}}; err != nil || n != 4 || !reflect.DeepEqual(got, want) {
		t.Errorf("flat cell 0 = %v %d, %v", got, n, err)
	}
}

func TestCPUStats(t *testing.T) {
	if _, n, err := numa2.CPUStats(AllCPUs, 0); err != nil || n != 4 {
		t.Errorf("count = %d, %v", n, err)
	}
	got, _, err := numa2.CPUStats(AllCPUs, 4)
	tick := uint64(10_000_000)
	want := []Stat{{"kernel", (48820 + 7 + 1033) * tick}, {"user", (125470 + 10) * tick}, {"idle", 225351 * tick}, {"iowait", 1266 * tick}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("all cpus = %v, %v", got, err)
	}
	got, _, err = numa2.CPUStats(1, 4)
	want = []Stat{{"kernel", (22355 + 4 + 666) * tick}, {"user", (62253 + 5) * tick}, {"idle", 114646 * tick}, {"iowait", 1085 * tick}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("cpu1 = %v, %v", got, err)
	}
	// An old kernel's short line: the missing fields are zero.
	got, _, err = numa2.CPUStats(3, 4)
	want = []Stat{{"kernel", 20 * tick}, {"user", 10 * tick}, {"idle", 30 * tick}, {"iowait", 40 * tick}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("cpu3 = %v, %v", got, err)
	}
	_, _, err = numa2.CPUStats(2, 4)
	wantErr(t, err, libvirt.ErrInvalidArg, "Invalid cpuNum in virHostCPUGetStatsLinux")
	_, _, err = numa2.CPUStats(0, 3)
	wantErr(t, err, libvirt.ErrInvalidArg, "nparams in virHostCPUGetStatsLinux must be equal to 4")
}

func TestCPUMap(t *testing.T) {
	n, online, err := numa2.CPUMap()
	if err != nil || n != 4 || !reflect.DeepEqual(online, []int{0, 1, 3}) {
		t.Fatalf("CPUMap = %d %v, %v", n, online, err)
	}
	if b := CPUMapBytes(n, online); !reflect.DeepEqual(b, []byte{0b1011}) {
		t.Errorf("cpumap %08b", b)
	}
	if b := CPUMapBytes(10, []int{0, 9}); !reflect.DeepEqual(b, []byte{1, 2}) {
		t.Errorf("cpumap of 10 %v", b)
	}
	if n, online, err := flat.CPUMap(); err != nil || n != 1 || !reflect.DeepEqual(online, []int{0}) {
		t.Errorf("flat CPUMap = %d %v, %v", n, online, err)
	}
}

func TestSysinfoWithoutDMI(t *testing.T) {
	if _, err := flat.ReadSMBIOS(); err != ErrNoSMBIOS {
		t.Errorf("no DMI at all: %v", err)
	}
	// DMI exported but empty: an empty document, as libvirt prints
	// dmidecode's empty output.
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "sys/class/dmi/id"), 0o755)
	s, err := FS{Root: root}.ReadSMBIOS()
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Format(); got != "<sysinfo type='smbios'/>\n" {
		t.Errorf("empty DMI: %q", got)
	}
}

// dmiStructBytes builds one raw SMBIOS structure.
func dmiStructBytes(typ byte, formatted []byte, strs ...string) []byte {
	b := append([]byte{typ, byte(4 + len(formatted)), 0, 0}, formatted...)
	if len(strs) == 0 {
		return append(b, 0, 0)
	}
	for _, s := range strs {
		b = append(append(b, s...), 0)
	}
	return append(b, 0)
}

func TestSysinfoFromSysfsAndTable(t *testing.T) {
	root := t.TempDir()
	if err := os.CopyFS(root, os.DirFS("testdata/numa2")); err != nil {
		t.Fatal(err)
	}
	// A type 4 processor (SMBIOS 2.6 length 0x2A), Intel Xeon.
	p := make([]byte, 0x2A-4)
	p[0x04-4] = 1    // socket designation: string 1
	p[0x05-4] = 3    // central processor
	p[0x06-4] = 0xB3 // Xeon
	p[0x07-4] = 2    // manufacturer: string 2
	binary.LittleEndian.PutUint32(p[0x08-4:], 0x00050657)
	p[0x10-4] = 3 // version: string 3
	binary.LittleEndian.PutUint16(p[0x12-4:], 100)
	binary.LittleEndian.PutUint16(p[0x14-4:], 4000)
	p[0x18-4] = 0x41 // populated, enabled
	p[0x20-4] = 0    // serial: not specified
	p[0x22-4] = 4    // part number
	// A type 17 memory device of 16 GiB, DDR4 DIMM, and an empty slot.
	m := make([]byte, 0x28-4)
	binary.LittleEndian.PutUint16(m[0x0C-4:], 16384)
	m[0x0E-4] = 0x09
	m[0x10-4], m[0x11-4] = 1, 2
	m[0x12-4] = 0x1A
	binary.LittleEndian.PutUint16(m[0x13-4:], 1<<7|1<<13)
	binary.LittleEndian.PutUint16(m[0x15-4:], 2933)
	m[0x17-4], m[0x18-4], m[0x1A-4] = 3, 4, 5
	empty := make([]byte, 0x28-4)
	table := dmiStructBytes(4, p, "CPU 0", "Intel(R) Corporation", "Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz  ", "P-1")
	table = append(table, dmiStructBytes(17, m, "DIMM 0", "Bank 0", "Samsung", "0x1234", "M393A2K43CB2-CVF")...)
	table = append(table, dmiStructBytes(17, empty, "DIMM 1")...)
	table = append(table, dmiStructBytes(127, nil)...)
	dir := filepath.Join(root, "sys/firmware/dmi/tables")
	os.MkdirAll(dir, 0o755)
	if err := os.WriteFile(filepath.Join(dir, "DMI"), table, 0o400); err != nil {
		t.Fatal(err)
	}
	s, err := FS{Root: root}.ReadSMBIOS()
	if err != nil {
		t.Fatal(err)
	}
	want := `<sysinfo type='smbios'>
  <bios>
    <entry name='vendor'>SeaBIOS</entry>
    <entry name='version'>1.16.2-debian-1.16.2-1</entry>
    <entry name='date'>04/01/2014</entry>
    <entry name='release'>0.0</entry>
  </bios>
  <system>
    <entry name='manufacturer'>QEMU</entry>
    <entry name='product'>Standard PC (i440FX + PIIX, 1996)</entry>
    <entry name='version'>pc-i440fx-7.2</entry>
    <entry name='serial'>Not Specified</entry>
    <entry name='uuid'>8F3A1C2E-5B6D-4E7F-9A0B-1C2D3E4F5A6B</entry>
  </system>
  <chassis>
    <entry name='manufacturer'>QEMU</entry>
    <entry name='version'>pc-i440fx-7.2</entry>
    <entry name='serial'>Not Specified</entry>
    <entry name='asset'>Not Specified</entry>
  </chassis>
  <processor>
    <entry name='socket_destination'>CPU 0</entry>
    <entry name='type'>Central Processor</entry>
    <entry name='family'>Xeon</entry>
    <entry name='manufacturer'>Intel(R) Corporation</entry>
    <entry name='signature'>Type 0, Family 6, Model 85, Stepping 7</entry>
    <entry name='version'>Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz</entry>
    <entry name='external_clock'>100 MHz</entry>
    <entry name='max_speed'>4000 MHz</entry>
    <entry name='status'>Populated, Enabled</entry>
    <entry name='serial_number'>Not Specified</entry>
    <entry name='part_number'>P-1</entry>
  </processor>
  <memory_device>
    <entry name='size'>16 GB</entry>
    <entry name='form_factor'>DIMM</entry>
    <entry name='locator'>DIMM 0</entry>
    <entry name='bank_locator'>Bank 0</entry>
    <entry name='type'>DDR4</entry>
    <entry name='type_detail'>Synchronous Registered (Buffered)</entry>
    <entry name='speed'>2933 MT/s</entry>
    <entry name='manufacturer'>Samsung</entry>
    <entry name='serial_number'>0x1234</entry>
    <entry name='part_number'>M393A2K43CB2-CVF</entry>
  </memory_device>
</sysinfo>
`
	if got := s.Format(); got != want {
		t.Errorf("sysinfo:\n%s\nwant:\n%s", got, want)
	}
}

func TestMemorySizeLikeDmidecode(t *testing.T) {
	for kib, want := range map[uint64]string{2048 * 1024: "2 GB", 1536 * 1024: "1536 MB", 512: "512 kB", 16 << 20: "16 GB"} {
		if got := memorySize(kib); got != want {
			t.Errorf("memorySize(%d) = %q, want %q", kib, got, want)
		}
	}
}

func TestParseCPUList(t *testing.T) {
	got, err := ParseCPUList("0-2,5,7-8\n")
	if err != nil || !reflect.DeepEqual(got, []int{0, 1, 2, 5, 7, 8}) {
		t.Errorf("got %v, %v", got, err)
	}
	for _, bad := range []string{"a", "3-1", "-1"} {
		if _, err := ParseCPUList(bad); err == nil {
			t.Errorf("ParseCPUList(%q) accepted", bad)
		}
	}
}
