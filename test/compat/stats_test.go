package compat_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/govirtd/govirtd/test/deps"
)

// statsGuestXML is the test guest with what the statistics calls look at:
// two vCPUs (the second pinned to CPU 0), a raw virtio disk, a user NIC
// and a balloon polling every second.
func statsGuestXML(t *testing.T, name, disk, serial string) string {
	t.Helper()
	kernel, initrd := testGuest(t)
	return fmt.Sprintf(`<domain type='qemu'>
  <name>%s</name>
  <memory unit='MiB'>128</memory>
  <vcpu>2</vcpu>
  <cputune><vcpupin vcpu='1' cpuset='0'/></cputune>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>%s</kernel>
    <initrd>%s</initrd>
    <cmdline>console=ttyS0 quiet cryptomgr.notests acpi=off pti=on tick_ms=200</cmdline>
  </os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='%s'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='user'>
      <mac address='52:54:00:5a:00:01'/>
      <model type='virtio'/>
    </interface>
    <serial type='file'>
      <source path='%s' append='on'/>
      <target port='0'/>
    </serial>
    <memballoon model='virtio'><stats period='1'/></memballoon>
  </devices>
</domain>
`, name, kernel, initrd, disk, serial)
}

// statValue is the number after "key " or "key=" on a line of virsh output.
func statValue(t *testing.T, out, key string) int64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(key) + `[ =]\s*(\d+)\s*$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no %q in:\n%s", key, out)
	}
	v, _ := strconv.ParseInt(m[1], 10, 64)
	return v
}

func mustFail(t *testing.T, uri, want string, args ...string) {
	t.Helper()
	r := Virsh(t, uri, args...)
	if r.Err == nil || !strings.Contains(r.Stderr, want) {
		t.Errorf("virsh %s: want failure %q, got %s", strings.Join(args, " "), want, r)
	}
}

// TestStatsVirsh: virsh's statistics, vCPU and monitor commands against a
// running guest, with the values libvirt 9.0 reports for the same guest.
func TestStatsVirsh(t *testing.T) {
	deps.Require(t, "virsh", "qemu-system-x86_64", "qemu-img")
	h := StartHost(t, HostOptions{Name: "stats"})
	u := h.URI()
	// qemu-img allocates the first block of a raw image, so QEMU sees
	// 4 KiB allocated of 16 MiB.
	disk := filepath.Join(t.TempDir(), "vda.raw")
	if r := run(t, 30*time.Second, "qemu-img", "create", "-f", "raw", disk, "16M"); r.Err != nil {
		t.Fatal(r)
	}
	serial := filepath.Join(h.Dir, "st.serial")
	xml := filepath.Join(h.Dir, "st.xml")
	if err := os.WriteFile(xml, []byte(statsGuestXML(t, "st", disk, serial)), 0o644); err != nil {
		t.Fatal(err)
	}
	MustVirsh(t, u, "define", xml)

	// Shut off: no statistics from QEMU, the disk sized from its file.
	for _, args := range [][]string{
		{"dommemstat", "st"}, {"domblkstat", "st", "vda"}, {"domifstat", "st", "52:54:00:5a:00:01"},
		{"qemu-monitor-command", "st", `{"execute":"query-status"}`},
	} {
		mustFail(t, u, "domain is not running", args...)
	}
	off := MustVirsh(t, u, "domstats", "--block", "--interface", "st")
	for _, want := range []string{"block.count=1", "block.0.name=vda", "block.0.path=" + disk, "block.0.capacity=16777216", "block.0.physical=16777216"} {
		if !strings.Contains(off, want+"\n") {
			t.Errorf("shut-off domstats lacks %q:\n%s", want, off)
		}
	}
	if strings.Contains(off, "net.count") || strings.Contains(off, "backingIndex") || strings.Contains(off, "rd.reqs") {
		t.Errorf("shut-off domstats reports running-only values:\n%s", off)
	}

	MustVirsh(t, u, "start", "st")
	WaitTicks(t, serial, 2, 90*time.Second)

	// domstats: the guest kernel has read the disk's partition table.
	st := MustVirsh(t, u, "domstats", "--block", "--interface", "--perf", "st")
	for _, want := range []string{"net.count=1", "block.count=1", "block.0.name=vda", "block.0.path=" + disk, "block.0.backingIndex=1",
		"block.0.wr.reqs=0", "block.0.wr.bytes=0", "block.0.fl.reqs=0", "block.0.allocation=0", "block.0.capacity=16777216"} {
		if !strings.Contains(st, want+"\n") {
			t.Errorf("domstats lacks %q:\n%s", want, st)
		}
	}
	if statValue(t, st, "block.0.rd.reqs") < 1 || statValue(t, st, "block.0.rd.bytes") < 512 || statValue(t, st, "block.0.rd.times") <= 0 {
		t.Errorf("no reads counted:\n%s", st)
	}
	// What the sparse file occupies, as QEMU's actual-size.
	if phys := statValue(t, st, "block.0.physical"); phys >= 16<<20 {
		t.Errorf("physical %d: the sparse file's size, not its allocation", phys)
	}
	if strings.Contains(st, "net.0.") || strings.Contains(st, "perf.") {
		t.Errorf("domstats invents NIC or perf values:\n%s", st)
	}

	// domblkstat, by target and by path, in libvirt's names.
	blk := MustVirsh(t, u, "domblkstat", "st", "vda")
	rdReq := statValue(t, blk, "vda rd_req")
	if rdReq < 1 || statValue(t, blk, "vda rd_bytes") < 512 || statValue(t, blk, "vda wr_req") != 0 {
		t.Errorf("domblkstat vda:\n%s", blk)
	}
	for _, k := range []string{"flush_operations", "rd_total_times", "wr_total_times", "flush_total_times"} {
		statValue(t, blk, "vda "+k)
	}
	if strings.Contains(blk, "errs") {
		t.Errorf("domblkstat reports errs QEMU has not:\n%s", blk)
	}
	byPath := MustVirsh(t, u, "domblkstat", "st", disk)
	if statValue(t, byPath, disk+" rd_req") != rdReq {
		t.Errorf("domblkstat by path:\n%s", byPath)
	}
	if hum := MustVirsh(t, u, "domblkstat", "st", "vda", "--human"); !strings.Contains(hum, "number of read operations:      "+fmt.Sprint(rdReq)) {
		t.Errorf("domblkstat --human:\n%s", hum)
	}
	mustFail(t, u, "invalid argument: invalid path: vdb", "domblkstat", "st", "vdb")

	// domifstat: a user NIC has no host interface, which libvirt says so.
	mustFail(t, u, "internal error: Interface name not provided", "domifstat", "st", "52:54:00:5a:00:01")
	mustFail(t, u, "invalid argument: 'net0' is not a known interface", "domifstat", "st", "net0")

	// dommemstat: the balloon's size, QEMU's RSS, and the statistics the
	// guest's balloon driver reports every polling period (1 s here).
	var mem string
	for deadline := time.Now().Add(30 * time.Second); ; {
		mem = MustVirsh(t, u, "dommemstat", "st")
		if strings.Contains(mem, "last_update ") && statValue(t, mem, "last_update") > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the guest's balloon driver never reported:\n%s", mem)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if statValue(t, mem, "actual") != 131072 || statValue(t, mem, "rss") < 10000 ||
		statValue(t, mem, "available") <= 0 || statValue(t, mem, "available") > 131072 || statValue(t, mem, "unused") <= 0 {
		t.Errorf("dommemstat:\n%s", mem)
	}
	// The balloon polls at <stats period='1'/> from start, and at the
	// period set live; --config writes the definition.
	polling := func() string {
		out := MustVirsh(t, u, "qemu-monitor-command", "st",
			`{"execute":"qom-get","arguments":{"path":"/machine/peripheral/balloon0","property":"guest-stats-polling-interval"}}`)
		return strings.TrimSpace(out)
	}
	if p := polling(); !strings.HasPrefix(p, `{"return":1,`) {
		t.Errorf("polling interval at start: %s", p)
	}
	MustVirsh(t, u, "dommemstat", "st", "--period", "4", "--live")
	if p := polling(); !strings.HasPrefix(p, `{"return":4,`) {
		t.Errorf("polling interval after --period 4 --live: %s", p)
	}
	if x := MustVirsh(t, u, "dumpxml", "st"); !strings.Contains(x, "<stats period='4'/>") {
		t.Errorf("live XML lacks the new period:\n%s", x)
	}
	MustVirsh(t, u, "dommemstat", "st", "--period", "7", "--config")
	if x := MustVirsh(t, u, "dumpxml", "--inactive", "st"); !strings.Contains(x, "<stats period='7'/>") {
		t.Errorf("persistent XML lacks the new period:\n%s", x)
	}

	// vcpuinfo and vcpupin: the vCPU threads, their time and pinning.
	ncpu := statValue(t, MustVirsh(t, u, "nodeinfo"), "CPU(s):")
	all := "0"
	if ncpu > 1 {
		all = fmt.Sprintf("0-%d", ncpu-1)
	}
	vi := MustVirsh(t, u, "vcpuinfo", "st")
	if !regexp.MustCompile(`VCPU:\s+0\nCPU:\s+\d+\nState:\s+running\nCPU time:\s+[0-9.]+s\nCPU Affinity:\s+`+strings.Repeat("y", int(ncpu))+`\n`).MatchString(vi) ||
		!regexp.MustCompile(`VCPU:\s+1\nCPU:\s+0\nState:\s+running\n(CPU time:.*\n)?CPU Affinity:\s+y`+strings.Repeat("-", int(ncpu)-1)+`\n`).MatchString(vi) {
		t.Errorf("vcpuinfo:\n%s", vi)
	}
	if pin := MustVirsh(t, u, "vcpupin", "st"); !regexp.MustCompile(`^\s*0\s+` + all + `\n\s*1\s+0\n`).MatchString(pin) {
		t.Errorf("vcpupin:\n%s", pin)
	}
	MustVirsh(t, u, "vcpupin", "st", "0", "0")
	if pin := MustVirsh(t, u, "vcpupin", "st"); !regexp.MustCompile(`^\s*0\s+0\n\s*1\s+0\n`).MatchString(pin) {
		t.Errorf("vcpupin after pinning vCPU 0:\n%s", pin)
	}
	if vi := MustVirsh(t, u, "vcpuinfo", "st"); !regexp.MustCompile(`VCPU:\s+0\n(.*\n){3}CPU Affinity:\s+y` + strings.Repeat("-", int(ncpu)-1) + `\n`).MatchString(vi) {
		t.Errorf("vCPU 0's thread was not moved:\n%s", vi)
	}
	if x := MustVirsh(t, u, "dumpxml", "st"); !strings.Contains(x, "<vcpupin vcpu='0' cpuset='0'/>") {
		t.Errorf("live XML lacks the pinning:\n%s", x)
	}
	if pin := MustVirsh(t, u, "vcpupin", "st", "--config"); !regexp.MustCompile(`^\s*0\s+` + all + `\n`).MatchString(pin) {
		t.Errorf("a live pinning changed the persistent one:\n%s", pin)
	}
	mustFail(t, u, "vcpu 5 is out of range of live cpu count 2", "vcpupin", "st", "5", "0")

	// qemu-monitor-command: QMP as QEMU answers it, and HMP.
	qs := MustVirsh(t, u, "qemu-monitor-command", "st", `{"execute":"query-status"}`)
	if !strings.HasPrefix(qs, `{"return":{"status":"running","singlestep":false,"running":true},"id":`) {
		t.Errorf("query-status: %s", qs)
	}
	if out := MustVirsh(t, u, "qemu-monitor-command", "st", `{"execute":"nope"}`); !strings.Contains(out, `"error":{"class":"CommandNotFound","desc":"The command nope has not been found"}`) {
		t.Errorf("unknown command: %s", out)
	}
	if out := MustVirsh(t, u, "qemu-monitor-command", "st", "--hmp", "info status"); strings.TrimSpace(out) != "VM status: running" {
		t.Errorf("hmp info status: %q", out)
	}
	if log := readFile(t, h.LogPath); !strings.Contains(log, "name='st'") || !strings.Contains(log, "is tainted: custom-monitor") {
		t.Errorf("no taint warning in the daemon log")
	}

	MustVirsh(t, u, "destroy", "st")
	mustFail(t, u, "domain is not running", "qemu-monitor-command", "st", "--hmp", "info status")
	mustFail(t, u, "domain is not running", "domblkstat", "st", "vda")
}
