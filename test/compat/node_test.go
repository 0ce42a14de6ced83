package compat_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/govirtd/govirtd/test/deps"
)

// meminfoKiB reads one field of a meminfo file (/proc/meminfo or a NUMA
// node's, whose lines start with "Node N ").
func meminfoKiB(t *testing.T, path, key string) uint64 {
	t.Helper()
	for _, l := range lines(readFile(t, path)) {
		f := strings.Fields(l)
		for i := 0; i+1 < len(f); i++ {
			if f[i] == key+":" {
				n, err := strconv.ParseUint(f[i+1], 10, 64)
				if err != nil {
					t.Fatalf("%s: %q: %v", path, l, err)
				}
				return n
			}
		}
	}
	t.Fatalf("no %s in %s", key, path)
	return 0
}

// hostFreeKiB is the free memory libvirt reports: the NUMA nodes' MemFree
// added up, or /proc/meminfo's without NUMA sysfs.
func hostFreeKiB(t *testing.T) uint64 {
	t.Helper()
	nodes, _ := filepath.Glob("/sys/devices/system/node/node[0-9]*")
	if len(nodes) == 0 {
		return meminfoKiB(t, "/proc/meminfo", "MemFree")
	}
	var sum uint64
	for _, n := range nodes {
		sum += meminfoKiB(t, n+"/meminfo", "MemFree")
	}
	return sum
}

// near reports whether got is within tol KiB of want (free memory moves
// while the test runs).
func near(got, want, tol uint64) bool {
	if got > want {
		return got-want <= tol
	}
	return want-got <= tol
}

// field returns the number after "name:" in virsh's "name: value" output.
func field(t *testing.T, out, name string) uint64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(name) + `\s*:\s*(\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no %q in:\n%s", name, out)
	}
	n, _ := strconv.ParseUint(m[1], 10, 64)
	return n
}

// virshMsg runs virsh without -q, so that its informational messages
// ("Domain title updated successfully", freecell's total line) show.
func virshMsg(t *testing.T, uri string, args ...string) Result {
	t.Helper()
	return run(t, 30*time.Second, "virsh", append([]string{"-c", uri}, args...)...)
}

// TestNodeStats: virsh's host statistics commands report this machine's
// real figures.
func TestNodeStats(t *testing.T) {
	deps.Require(t, "virsh")
	t.Parallel()
	h := StartHost(t, HostOptions{Name: "nodestats"})
	const tol = 256 * 1024 // KiB

	// freecell: the total, each cell, one cell.
	out := MustVirsh(t, h.URI(), "freecell")
	m := regexp.MustCompile(`Total: (\d+) KiB`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("freecell:\n%s", out)
	}
	total, _ := strconv.ParseUint(m[1], 10, 64)
	if want := hostFreeKiB(t); total == 0 || !near(total, want, tol) {
		t.Errorf("freecell total %d KiB, host has %d KiB free", total, want)
	}
	all := virshMsg(t, h.URI(), "freecell", "--all").Stdout
	cells := regexp.MustCompile(`(?m)^\s*(\d+):\s+(\d+) KiB`).FindAllStringSubmatch(all, -1)
	nodes, _ := filepath.Glob("/sys/devices/system/node/node[0-9]*")
	if wantCells := max(len(nodes), 1); len(cells) != wantCells || !strings.Contains(all, "Total:") {
		t.Errorf("freecell --all lists %d cells, want %d:\n%s", len(cells), wantCells, all)
	}
	for _, c := range cells {
		free, _ := strconv.ParseUint(c[2], 10, 64)
		want := meminfoKiB(t, "/proc/meminfo", "MemFree")
		if len(nodes) > 0 {
			want = meminfoKiB(t, "/sys/devices/system/node/node"+c[1]+"/meminfo", "MemFree")
		}
		if free == 0 || !near(free, want, tol) {
			t.Errorf("cell %s: %d KiB free, meminfo says %d", c[1], free, want)
		}
	}
	one := MustVirsh(t, h.URI(), "freecell", "--cellno", "0")
	if !regexp.MustCompile(`^0: \d+ KiB`).MatchString(strings.TrimSpace(one)) {
		t.Errorf("freecell --cellno 0:\n%s", one)
	}
	if r := Virsh(t, h.URI(), "freecell", "--cellno", "4096"); r.Err == nil || !strings.Contains(r.Stderr, "start cell 4096 out of range") {
		t.Errorf("freecell of a cell that does not exist:\n%s", r)
	}

	// nodecpustats: nanoseconds, so at least the uptime's share (ticks of
	// 10 ms) and never less than what /proc/stat said before the call.
	stat := strings.Fields(lines(readFile(t, "/proc/stat"))[0])
	userTicks, _ := strconv.ParseUint(stat[1], 10, 64)
	out = MustVirsh(t, h.URI(), "nodecpustats")
	for _, f := range []string{"user", "system", "idle", "iowait"} {
		field(t, out, f)
	}
	if u := field(t, out, "user"); u < userTicks*10_000_000 || u%10_000_000 != 0 {
		t.Errorf("user %d ns, /proc/stat said %d ticks before:\n%s", u, userTicks, out)
	}
	if field(t, out, "idle") == 0 {
		t.Errorf("no idle time:\n%s", out)
	}
	cpu0 := MustVirsh(t, h.URI(), "nodecpustats", "--cpu", "0")
	if field(t, cpu0, "user") > field(t, out, "user")+1_000_000_000 {
		t.Errorf("CPU 0 has more user time than all CPUs:\n%s\n%s", cpu0, out)
	}
	pct := MustVirsh(t, h.URI(), "nodecpustats", "--percent")
	if !regexp.MustCompile(`usage:\s+\d+\.\d%`).MatchString(pct) || !strings.Contains(pct, "idle:") {
		t.Errorf("nodecpustats --percent:\n%s", pct)
	}
	if r := Virsh(t, h.URI(), "nodecpustats", "--cpu", "4096"); r.Err == nil || !strings.Contains(r.Stderr, "Invalid cpuNum in virHostCPUGetStatsLinux") {
		t.Errorf("nodecpustats of a CPU that does not exist:\n%s", r)
	}

	// nodememstats: /proc/meminfo in KiB.
	out = MustVirsh(t, h.URI(), "nodememstats")
	if got, want := field(t, out, "total"), meminfoKiB(t, "/proc/meminfo", "MemTotal"); got != want {
		t.Errorf("nodememstats total %d, /proc/meminfo MemTotal %d", got, want)
	}
	if got, want := field(t, out, "free"), meminfoKiB(t, "/proc/meminfo", "MemFree"); !near(got, want, tol) {
		t.Errorf("nodememstats free %d, /proc/meminfo MemFree %d", got, want)
	}
	field(t, out, "buffers")
	field(t, out, "cached")
	cell := MustVirsh(t, h.URI(), "nodememstats", "--cell", "0")
	wantTotal := meminfoKiB(t, "/proc/meminfo", "MemTotal")
	if len(nodes) > 0 {
		wantTotal = meminfoKiB(t, "/sys/devices/system/node/node0/meminfo", "MemTotal")
	}
	if got := field(t, cell, "total"); got != wantTotal {
		t.Errorf("nodememstats --cell 0 total %d, want %d:\n%s", got, wantTotal, cell)
	}

	// nodecpumap: every CPU of this machine, all online here.
	out = MustVirsh(t, h.URI(), "nodecpumap")
	n := runtime.NumCPU()
	if field(t, out, "CPUs present") < uint64(n) || field(t, out, "CPUs online") != uint64(n) {
		t.Errorf("nodecpumap for %d CPUs:\n%s", n, out)
	}
	if m := regexp.MustCompile(`CPU map:\s+([y-]+)`).FindStringSubmatch(out); m == nil || strings.Count(m[1], "y") != n {
		t.Errorf("nodecpumap map for %d CPUs:\n%s", n, out)
	}

	// sysinfo: libvirt's SMBIOS document, naming the product if the
	// firmware has one; libvirt's error where the host exports no DMI
	// (dmidecode fails there, so libvirtd has no host sysinfo).
	_, errID := os.Stat("/sys/class/dmi/id")
	_, errTables := os.Stat("/sys/firmware/dmi/tables")
	if errID != nil && errTables != nil {
		r := Virsh(t, h.URI(), "sysinfo")
		if r.Err == nil || !strings.Contains(r.Stderr, "unsupported configuration: Host SMBIOS information is not available") {
			t.Errorf("sysinfo on a host without DMI:\n%s", r)
		}
		return
	}
	out = MustVirsh(t, h.URI(), "sysinfo")
	if !strings.HasPrefix(out, "<sysinfo type='smbios'") {
		t.Errorf("sysinfo:\n%s", out)
	}
	if b, err := os.ReadFile("/sys/class/dmi/id/product_name"); err == nil && strings.TrimSpace(string(b)) != "" {
		want := "<entry name='product'>" + strings.TrimSpace(string(b)) + "</entry>"
		if !strings.Contains(out, want) || !strings.Contains(out, "<system>") {
			t.Errorf("sysinfo lacks %q:\n%s", want, out)
		}
	}
}

// TestNodeMetadata: virsh desc and virsh metadata on a shut off and on a
// running guest, for the live and the persistent definition, kept across
// a daemon restart, with metadata-change events.
func TestNodeMetadata(t *testing.T) {
	deps.Require(t, "virsh", "qemu-system-x86_64")
	t.Parallel()
	h := StartHost(t, HostOptions{Name: "nodemeta"})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ev := exec.CommandContext(ctx, "virsh", "-c", h.URI(), "event", "--all", "--loop")
	var evOut strings.Builder
	ev.Stdout, ev.Stderr = &evOut, &evOut
	if err := ev.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ev.Process.Kill(); ev.Wait() })
	time.Sleep(500 * time.Millisecond)

	serial := filepath.Join(h.Dir, "md.serial")
	defineGuest(t, h, GuestOptions{Name: "md", Serial: serial})
	const ns = "http://example.org/govirtd-test"
	const notFound = "metadata not found: Requested metadata element is not present"

	// Shut off: everything goes to the persistent definition.
	if r := virshMsg(t, h.URI(), "desc", "md"); r.Err != nil || !strings.Contains(r.Stdout, "No description for domain: md") {
		t.Errorf("desc of a domain without one:\n%s", r)
	}
	if out := virshMsg(t, h.URI(), "desc", "md", "--title", "Database VM").Stdout; !strings.Contains(out, "Domain title updated successfully") {
		t.Errorf("desc --title set: %s", out)
	}
	MustVirsh(t, h.URI(), "desc", "md", "First line\nsecond line")
	if got := strings.TrimSpace(MustVirsh(t, h.URI(), "desc", "md", "--title")); got != "Database VM" {
		t.Errorf("title %q", got)
	}
	if got := strings.TrimSpace(MustVirsh(t, h.URI(), "desc", "md")); got != "First line\nsecond line" {
		t.Errorf("description %q", got)
	}
	if out := MustVirsh(t, h.URI(), "list", "--all", "--title"); !regexp.MustCompile(`md\s+shut off\s+Database VM`).MatchString(out) {
		t.Errorf("list --title:\n%s", out)
	}
	if r := Virsh(t, h.URI(), "desc", "md", "--live", "x"); r.Err == nil || !strings.Contains(r.Stderr, "domain is not running") {
		t.Errorf("desc --live of a shut off domain:\n%s", r)
	}
	if r := Virsh(t, h.URI(), "metadata", "md", ns); r.Err == nil || !strings.Contains(r.Stderr, notFound) {
		t.Errorf("metadata before any is set:\n%s", r)
	}
	if out := virshMsg(t, h.URI(), "metadata", "md", ns, "--key", "gt", "--set", `<app owner='alice'><role>db</role></app>`).Stdout; !strings.Contains(out, "Metadata modified") {
		t.Errorf("metadata --set: %s", out)
	}
	want := "<app owner=\"alice\">\n  <role>db</role>\n</app>"
	if got := strings.TrimSpace(MustVirsh(t, h.URI(), "metadata", "md", ns)); got != want {
		t.Errorf("metadata get:\n%s\nwant:\n%s", got, want)
	}
	xml := MustVirsh(t, h.URI(), "dumpxml", "md")
	for _, w := range []string{"<title>Database VM</title>", "<description>First line\nsecond line</description>",
		"  <metadata>\n    <gt:app xmlns:gt=\"" + ns + "\" owner=\"alice\">\n      <gt:role>db</gt:role>\n    </gt:app>\n  </metadata>\n"} {
		if !strings.Contains(xml, w) {
			t.Errorf("dumpxml lacks %q:\n%s", w, xml)
		}
	}
	// A second application's element lives beside it; removing one
	// leaves the other.
	MustVirsh(t, h.URI(), "metadata", "md", "urn:other", "--key", "o", "--set", "<cfg>1</cfg>")
	if out := virshMsg(t, h.URI(), "metadata", "md", "urn:other", "--remove").Stdout; !strings.Contains(out, "Metadata removed") {
		t.Errorf("metadata --remove: %s", out)
	}
	if r := Virsh(t, h.URI(), "metadata", "md", "urn:other"); r.Err == nil || !strings.Contains(r.Stderr, notFound) {
		t.Errorf("removed metadata still there:\n%s", r)
	}
	if got := strings.TrimSpace(MustVirsh(t, h.URI(), "metadata", "md", ns)); got != want {
		t.Errorf("other app's removal touched ours: %s", got)
	}

	// Running: live and config are apart.
	MustVirsh(t, h.URI(), "start", "md")
	WaitTicks(t, serial, 0, 60*time.Second)
	if got := strings.TrimSpace(MustVirsh(t, h.URI(), "desc", "md", "--title")); got != "Database VM" {
		t.Errorf("live title after start %q", got)
	}
	MustVirsh(t, h.URI(), "desc", "md", "--live", "--title", "Live title")
	MustVirsh(t, h.URI(), "desc", "md", "--config", "Config description")
	if got := strings.TrimSpace(MustVirsh(t, h.URI(), "desc", "md", "--title")); got != "Live title" {
		t.Errorf("current (live) title %q", got)
	}
	if got := strings.TrimSpace(MustVirsh(t, h.URI(), "desc", "md", "--config", "--title")); got != "Database VM" {
		t.Errorf("config title %q", got)
	}
	if got := strings.TrimSpace(MustVirsh(t, h.URI(), "desc", "md", "--live")); got != "First line\nsecond line" {
		t.Errorf("live description %q", got)
	}
	if got := strings.TrimSpace(MustVirsh(t, h.URI(), "desc", "md", "--config")); got != "Config description" {
		t.Errorf("config description %q", got)
	}
	MustVirsh(t, h.URI(), "metadata", "md", ns, "--live", "--key", "gt", "--set", "<app owner='bob'/>")
	if got := strings.TrimSpace(MustVirsh(t, h.URI(), "metadata", "md", ns)); got != `<app owner="bob"/>` {
		t.Errorf("live metadata %q", got)
	}
	if got := strings.TrimSpace(MustVirsh(t, h.URI(), "metadata", "md", ns, "--config")); got != want {
		t.Errorf("config metadata %q", got)
	}
	if x := MustVirsh(t, h.URI(), "dumpxml", "--inactive", "md"); !strings.Contains(x, "<description>Config description</description>") || !strings.Contains(x, "owner=\"alice\"") {
		t.Errorf("dumpxml --inactive:\n%s", x)
	}
	// A running guest cannot be renamed.
	if r := Virsh(t, h.URI(), "domrename", "md", "md2"); r.Err == nil || !strings.Contains(r.Stderr, "Requested operation is not valid: cannot rename active domain") {
		t.Errorf("domrename of a running guest:\n%s", r)
	}

	// The restarted daemon has both definitions' metadata.
	h.Restart()
	if got := strings.TrimSpace(MustVirsh(t, h.URI(), "desc", "md", "--title")); got != "Live title" {
		t.Errorf("live title after restart %q", got)
	}
	if got := strings.TrimSpace(MustVirsh(t, h.URI(), "metadata", "md", ns, "--config")); got != want {
		t.Errorf("config metadata after restart %q", got)
	}
	MustVirsh(t, h.URI(), "destroy", "md")
	// Shut off again: the persistent definition is what is left.
	if got := strings.TrimSpace(MustVirsh(t, h.URI(), "desc", "md", "--title")); got != "Database VM" {
		t.Errorf("title after destroy %q", got)
	}
	if got := strings.TrimSpace(MustVirsh(t, h.URI(), "metadata", "md", ns)); got != want {
		t.Errorf("metadata after destroy %q", got)
	}
	h.Restart()
	if got := strings.TrimSpace(MustVirsh(t, h.URI(), "desc", "md")); got != "Config description" {
		t.Errorf("description after second restart %q", got)
	}
	if got := strings.TrimSpace(MustVirsh(t, h.URI(), "metadata", "md", ns)); got != want {
		t.Errorf("metadata after second restart %q", got)
	}

	// The event stream of the first daemon saw the changes (the event
	// client does not outlive its daemon's restart).
	got := evOut.String()
	for _, w := range []string{
		"event 'metadata-change' for domain 'md': type title, uri <null>",
		"event 'metadata-change' for domain 'md': type description, uri <null>",
		"event 'metadata-change' for domain 'md': type element, uri " + ns,
		"event 'metadata-change' for domain 'md': type element, uri urn:other",
	} {
		if !strings.Contains(got, w) {
			t.Errorf("virsh event output lacks %q:\n%s", w, got)
		}
	}
}

// TestNodeRename: virsh domrename of a shut off guest keeps its UUID,
// survives a restart, and says what libvirt says when it cannot.
func TestNodeRename(t *testing.T) {
	deps.Require(t, "virsh")
	t.Parallel()
	h := StartHost(t, HostOptions{Name: "noderename"})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ev := exec.CommandContext(ctx, "virsh", "-c", h.URI(), "event", "--all", "--loop")
	var evOut strings.Builder
	ev.Stdout, ev.Stderr = &evOut, &evOut
	if err := ev.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ev.Process.Kill(); ev.Wait() })
	time.Sleep(500 * time.Millisecond)

	defineGuest(t, h, GuestOptions{Name: "old"})
	defineGuest(t, h, GuestOptions{Name: "busy"})
	uuid := strings.TrimSpace(MustVirsh(t, h.URI(), "domuuid", "old"))
	MustVirsh(t, h.URI(), "desc", "old", "--title", "keeps its title")
	MustVirsh(t, h.URI(), "autostart", "old")

	if out := virshMsg(t, h.URI(), "domrename", "old", "new").Stdout; !strings.Contains(out, "Domain successfully renamed") {
		t.Errorf("domrename: %s", out)
	}
	check := func(when string) {
		t.Helper()
		if r := Virsh(t, h.URI(), "dominfo", "old"); r.Err == nil || !strings.Contains(r.Stderr, "failed to get domain 'old'") {
			t.Errorf("%s: old name still there:\n%s", when, r)
		}
		if got := strings.TrimSpace(MustVirsh(t, h.URI(), "domuuid", "new")); got != uuid {
			t.Errorf("%s: uuid %s, want %s", when, got, uuid)
		}
		if got := strings.TrimSpace(MustVirsh(t, h.URI(), "domname", uuid)); got != "new" {
			t.Errorf("%s: domname of the uuid %q", when, got)
		}
		info := MustVirsh(t, h.URI(), "dominfo", "new")
		if !regexp.MustCompile(`Autostart:\s+enable`).MatchString(info) {
			t.Errorf("%s: autostart lost:\n%s", when, info)
		}
		x := MustVirsh(t, h.URI(), "dumpxml", "new")
		if !strings.Contains(x, "<name>new</name>") || !strings.Contains(x, "<title>keeps its title</title>") {
			t.Errorf("%s: dumpxml:\n%s", when, x)
		}
		list := MustVirsh(t, h.URI(), "list", "--all", "--name")
		if fmt.Sprint(lines(list)) != "[busy new]" {
			t.Errorf("%s: list --all --name: %q", when, list)
		}
	}
	check("after rename")
	if r := Virsh(t, h.URI(), "domrename", "new", "busy"); r.Err == nil || !strings.Contains(r.Stderr, "operation failed: domain with name 'busy' already exists") {
		t.Errorf("domrename to a taken name:\n%s", r)
	}
	h.Stop()
	// The autostart mark moved with the definition; it goes before the
	// restart, which would otherwise boot the guest.
	if _, err := os.Stat(filepath.Join(h.Dir, "state/qemu/autostart/new")); err != nil {
		t.Errorf("autostart mark: %v", err)
	}
	if _, err := os.Stat(filepath.Join(h.Dir, "state/qemu/domains/old.xml")); err == nil {
		t.Error("old definition file left behind")
	}
	os.Remove(filepath.Join(h.Dir, "state/qemu/autostart/new"))
	h.Start()
	MustVirsh(t, h.URI(), "autostart", "new")
	check("after restart")

	got := evOut.String()
	for _, w := range []string{
		"event 'lifecycle' for domain 'old': Undefined Renamed",
		"event 'lifecycle' for domain 'new': Defined Renamed",
	} {
		if !strings.Contains(got, w) {
			t.Errorf("virsh event output lacks %q:\n%s", w, got)
		}
	}
}
