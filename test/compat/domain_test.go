package compat_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/govirtd/govirtd/test/deps"
)

// defineGuest writes the test guest's XML and defines it with virsh.
func defineGuest(t *testing.T, h *Host, o GuestOptions) (xmlPath string) {
	t.Helper()
	if o.Serial == "" {
		o.Serial = filepath.Join(h.Dir, o.Name+".serial")
	}
	xmlPath = filepath.Join(h.Dir, o.Name+".xml")
	if err := os.WriteFile(xmlPath, []byte(GuestXML(t, o)), 0o644); err != nil {
		t.Fatal(err)
	}
	MustVirsh(t, h.URI(), "define", xmlPath)
	return xmlPath
}

func domstate(t *testing.T, h *Host, name string) string {
	t.Helper()
	return strings.TrimSpace(MustVirsh(t, h.URI(), "domstate", "--reason", name))
}

// TestDomainLifecycle: what a newcomer's virsh session does with a real
// QEMU guest: define, start, watch it tick, inspect, suspend (ticks stop),
// resume (ticks go on), destroy, undefine.
func TestDomainLifecycle(t *testing.T) {
	deps.Require(t, "virsh", "qemu-system-x86_64")
	t.Parallel()
	h := StartHost(t, HostOptions{Name: "lifecycle"})
	serial := filepath.Join(h.Dir, "g1.serial")
	defineGuest(t, h, GuestOptions{Name: "g1", Serial: serial})

	if out := MustVirsh(t, h.URI(), "list", "--all"); !strings.Contains(out, "g1") || !strings.Contains(out, "shut off") {
		t.Fatalf("list --all after define:\n%s", out)
	}
	if r := run(t, 60*time.Second, "virsh", "-c", h.URI(), "start", "g1"); r.Err != nil || !strings.Contains(r.Stdout, "Domain 'g1' started") {
		t.Fatalf("virsh start:\n%s", r)
	}
	first := WaitTicks(t, serial, 1, 60*time.Second)

	info := MustVirsh(t, h.URI(), "dominfo", "g1")
	for _, want := range []string{"Name:           g1", "State:          running", "CPU(s):         1", "Max memory:     131072 KiB", "Persistent:     yes", "OS Type:        hvm"} {
		if !strings.Contains(info, want) {
			t.Errorf("dominfo lacks %q:\n%s", want, info)
		}
	}
	if st := domstate(t, h, "g1"); st != "running (booted)" {
		t.Errorf("domstate = %q", st)
	}
	xml := MustVirsh(t, h.URI(), "dumpxml", "g1")
	if !strings.Contains(xml, "<domain type='qemu' id='") || !strings.Contains(xml, "<name>g1</name>") || !strings.Contains(xml, "machine='pc-i440fx-") {
		t.Errorf("dumpxml:\n%s", xml)
	}
	if pids := h.QEMUPids(); len(pids) != 1 {
		t.Fatalf("%d QEMU processes for one running guest: %v", len(pids), pids)
	}

	MustVirsh(t, h.URI(), "suspend", "g1")
	if st := domstate(t, h, "g1"); st != "paused (user)" {
		t.Errorf("after suspend: %q", st)
	}
	paused, _ := LastTick(serial)
	time.Sleep(1500 * time.Millisecond)
	if still, _ := LastTick(serial); still.N != paused.N {
		t.Errorf("guest ticked while paused: %d -> %d", paused.N, still.N)
	}
	MustVirsh(t, h.URI(), "resume", "g1")
	if st := domstate(t, h, "g1"); st != "running (unpaused)" {
		t.Errorf("after resume: %q", st)
	}
	after := WaitTicks(t, serial, paused.N+2, 30*time.Second)
	if after.BootID != first.BootID {
		t.Errorf("boot id changed across suspend/resume: %s -> %s", first.BootID, after.BootID)
	}
	if after.Mism != 0 {
		t.Errorf("guest reports %d memory mismatches", after.Mism)
	}

	MustVirsh(t, h.URI(), "destroy", "g1")
	if st := domstate(t, h, "g1"); st != "shut off (destroyed)" {
		t.Errorf("after destroy: %q", st)
	}
	if pids := h.QEMUPids(); len(pids) != 0 {
		t.Errorf("QEMU still running after destroy: %v", pids)
	}
	if r := Virsh(t, h.URI(), "resume", "g1"); r.Err == nil || !strings.Contains(r.Stderr, "domain is not running") {
		t.Errorf("resume of a stopped domain:\n%s", r)
	}
	MustVirsh(t, h.URI(), "undefine", "g1")
	if out := MustVirsh(t, h.URI(), "list", "--all"); strings.TrimSpace(out) != "" {
		t.Errorf("list --all after undefine:\n%s", out)
	}
	if r := Virsh(t, h.URI(), "dominfo", "g1"); r.Err == nil || !strings.Contains(r.Stderr, "failed to get domain 'g1'") {
		t.Errorf("dominfo of an undefined domain:\n%s", r)
	}
}

// TestDomainEvents: `virsh event --all --loop` sees a domain's life.
func TestDomainEvents(t *testing.T) {
	deps.Require(t, "virsh", "qemu-system-x86_64")
	t.Parallel()
	h := StartHost(t, HostOptions{Name: "events"})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ev := exec.CommandContext(ctx, "virsh", "-c", h.URI(), "event", "--all", "--loop")
	var out strings.Builder
	ev.Stdout = &out
	ev.Stderr = &out
	if err := ev.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ev.Process.Kill(); ev.Wait() })
	time.Sleep(500 * time.Millisecond) // let it register its callbacks

	serial := filepath.Join(h.Dir, "ev.serial")
	defineGuest(t, h, GuestOptions{Name: "ev", Serial: serial})
	MustVirsh(t, h.URI(), "start", "ev")
	WaitTicks(t, serial, 0, 60*time.Second)
	MustVirsh(t, h.URI(), "suspend", "ev")
	MustVirsh(t, h.URI(), "resume", "ev")
	MustVirsh(t, h.URI(), "destroy", "ev")
	MustVirsh(t, h.URI(), "undefine", "ev")

	want := []string{
		"event 'lifecycle' for domain 'ev': Defined Added",
		"event 'lifecycle' for domain 'ev': Started Booted",
		"event 'lifecycle' for domain 'ev': Suspended Paused",
		"event 'lifecycle' for domain 'ev': Resumed Unpaused",
		"event 'lifecycle' for domain 'ev': Stopped Destroyed",
		"event 'lifecycle' for domain 'ev': Undefined Removed",
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && !strings.Contains(out.String(), want[len(want)-1]) {
		time.Sleep(100 * time.Millisecond)
	}
	got := out.String()
	pos := 0
	for _, w := range want {
		i := strings.Index(got[pos:], w)
		if i < 0 {
			t.Fatalf("virsh event output lacks %q (in order):\n%s", w, got)
		}
		pos += i + len(w)
	}
}

// TestDaemonRestartKeepsDomains: kill -9 the daemon while a guest runs; the
// restarted daemon finds the QEMU again (same id, still running, still
// manageable), and a QEMU that died meanwhile is reported crashed.
func TestDaemonRestartKeepsDomains(t *testing.T) {
	deps.Require(t, "virsh", "qemu-system-x86_64")
	t.Parallel()
	h := StartHost(t, HostOptions{Name: "restart"})
	serialA := filepath.Join(h.Dir, "ra.serial")
	serialB := filepath.Join(h.Dir, "rb.serial")
	defineGuest(t, h, GuestOptions{Name: "ra", Serial: serialA})
	defineGuest(t, h, GuestOptions{Name: "rb", Serial: serialB})
	MustVirsh(t, h.URI(), "start", "ra")
	MustVirsh(t, h.URI(), "start", "rb")
	before := WaitTicks(t, serialA, 1, 60*time.Second)
	WaitTicks(t, serialB, 1, 60*time.Second)
	idA := strings.TrimSpace(MustVirsh(t, h.URI(), "domid", "ra"))

	h.Kill9()
	// While the daemon is down, rb's QEMU dies.
	pids := pidsMatching("guest=rb,.*" + regexp.QuoteMeta(h.Dir))
	if len(pids) != 1 {
		t.Fatalf("want one QEMU for rb, found %v", pids)
	}
	syscall.Kill(pids[0], syscall.SIGKILL)
	h.Restart()

	if got := strings.TrimSpace(MustVirsh(t, h.URI(), "domid", "ra")); got != idA {
		t.Errorf("id after restart %q, want %q", got, idA)
	}
	if st := domstate(t, h, "ra"); !strings.HasPrefix(st, "running") {
		t.Errorf("ra after restart: %q", st)
	}
	if st := domstate(t, h, "rb"); st != "shut off (crashed)" {
		t.Errorf("rb (QEMU killed while the daemon was down): %q", st)
	}
	after := WaitTicks(t, serialA, before.N+2, 30*time.Second)
	if after.BootID != before.BootID {
		t.Errorf("guest rebooted across the daemon restart: %s -> %s", before.BootID, after.BootID)
	}
	// Still manageable: suspend, resume, destroy through the new daemon.
	MustVirsh(t, h.URI(), "suspend", "ra")
	if st := domstate(t, h, "ra"); st != "paused (user)" {
		t.Errorf("suspend after restart: %q", st)
	}
	MustVirsh(t, h.URI(), "resume", "ra")
	MustVirsh(t, h.URI(), "destroy", "ra")
	if len(h.QEMUPids()) != 0 {
		t.Errorf("QEMU left running: %v", h.QEMUPids())
	}
}

// TestBadDomainXML: malformed XML and unsupported elements get libvirt's
// errors and leave nothing behind.
func TestBadDomainXML(t *testing.T) {
	deps.Require(t, "virsh")
	t.Parallel()
	h := StartHost(t, HostOptions{})
	cases := map[string]struct{ xml, want string }{
		"malformed":   {"<domain type='qemu'><name>x</name>", "(domain_definition):1:"},
		"unsupported": {"<domain type='qemu'><name>x</name><memory>65536</memory><os><type>hvm</type></os><devices><hostdev mode='subsystem' type='pci'/></devices></domain>", "unsupported configuration"},
		"no name":     {"<domain type='qemu'><memory>65536</memory><os><type>hvm</type></os></domain>", "name"},
	}
	for name, c := range cases {
		p := filepath.Join(h.Dir, name+".xml")
		os.WriteFile(p, []byte(c.xml), 0o644)
		r := Virsh(t, h.URI(), "define", p)
		if r.Err == nil || !strings.Contains(r.Stderr, c.want) {
			t.Errorf("%s: define gave:\n%s\nwant an error mentioning %q", name, r, c.want)
		}
	}
	if out := MustVirsh(t, h.URI(), "list", "--all"); strings.TrimSpace(out) != "" {
		t.Errorf("bad definitions left domains behind:\n%s", out)
	}
	entries, _ := os.ReadDir(filepath.Join(h.Dir, "state", "qemu", "domains"))
	if len(entries) != 0 {
		t.Errorf("bad definitions left files behind: %v", entries)
	}
}

// TestDomainDisksStatsAutostartTransient: a guest with a qcow2 disk;
// domstats, domblkinfo and domblklist; autostart honoured when the daemon
// starts; a transient domain (virsh create) that vanishes when destroyed.
func TestDomainDisksStatsAutostartTransient(t *testing.T) {
	deps.Require(t, "virsh", "qemu-system-x86_64", "qemu-img")
	t.Parallel()
	h := StartHost(t, HostOptions{Name: "extras"})
	disk := filepath.Join(h.Dir, "disk.qcow2")
	if r := run(t, 30*time.Second, "qemu-img", "create", "-f", "qcow2", disk, "64M"); r.Err != nil {
		t.Fatal(r)
	}
	serial := filepath.Join(h.Dir, "dx.serial")
	xml := GuestXML(t, GuestOptions{Name: "dx", Serial: serial})
	xml = strings.Replace(xml, "<devices>", "<devices>\n    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='"+disk+"'/><target dev='vda' bus='virtio'/></disk>", 1)
	xmlPath := filepath.Join(h.Dir, "dx.xml")
	os.WriteFile(xmlPath, []byte(xml), 0o644)
	MustVirsh(t, h.URI(), "define", xmlPath)
	MustVirsh(t, h.URI(), "start", "dx")
	WaitTicks(t, serial, 0, 60*time.Second)

	stats := MustVirsh(t, h.URI(), "domstats", "dx")
	for _, want := range []string{"state.state=1", "balloon.maximum=131072", "cpu.time=", "vcpu.current=1"} {
		if !strings.Contains(stats, want) {
			t.Errorf("domstats lacks %q:\n%s", want, stats)
		}
	}
	if info := MustVirsh(t, h.URI(), "domblkinfo", "dx", "vda"); !strings.Contains(info, "Capacity:       67108864") {
		t.Errorf("domblkinfo:\n%s", info)
	}
	if l := MustVirsh(t, h.URI(), "domblklist", "dx"); !strings.Contains(l, "vda") || !strings.Contains(l, disk) {
		t.Errorf("domblklist:\n%s", l)
	}
	if r := Virsh(t, h.URI(), "domblkinfo", "dx", "vdz"); r.Err == nil || !strings.Contains(r.Stderr, "invalid path vdz not assigned to domain") {
		t.Errorf("domblkinfo of a missing disk:\n%s", r)
	}

	// Autostart: after a daemon restart with the domain shut off, it runs.
	MustVirsh(t, h.URI(), "autostart", "dx")
	MustVirsh(t, h.URI(), "destroy", "dx")
	h.Restart()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.HasPrefix(domstate(t, h, "dx"), "running") {
		if time.Now().After(deadline) {
			t.Fatalf("autostart domain not running after daemon start: %s", domstate(t, h, "dx"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if info := MustVirsh(t, h.URI(), "dominfo", "dx"); !strings.Contains(info, "Autostart:      enable") {
		t.Errorf("dominfo after autostart:\n%s", info)
	}
	MustVirsh(t, h.URI(), "destroy", "dx")

	// Transient: virsh create runs a domain that is gone once destroyed.
	tserial := filepath.Join(h.Dir, "tr.serial")
	tpath := filepath.Join(h.Dir, "tr.xml")
	os.WriteFile(tpath, []byte(GuestXML(t, GuestOptions{Name: "tr", Serial: tserial})), 0o644)
	MustVirsh(t, h.URI(), "create", tpath)
	WaitTicks(t, tserial, 0, 60*time.Second)
	if info := MustVirsh(t, h.URI(), "dominfo", "tr"); !strings.Contains(info, "Persistent:     no") {
		t.Errorf("transient dominfo:\n%s", info)
	}
	MustVirsh(t, h.URI(), "destroy", "tr")
	if out := MustVirsh(t, h.URI(), "list", "--all", "--name"); strings.Contains(out, "tr") {
		t.Errorf("transient domain still listed after destroy:\n%s", out)
	}
}

// TestShutdownAndReboot: with ACPI, the guest answers the power button as
// a real OS does. virsh reboot powers it off and libvirt's fake reboot
// resets it into a new boot on the same QEMU; virsh shutdown powers it off
// for good (reason shutdown). A paused guest's shutdown is refused.
func TestShutdownAndReboot(t *testing.T) {
	deps.Require(t, "virsh", "qemu-system-x86_64")
	t.Parallel()
	h := StartHost(t, HostOptions{Name: "sr"})
	serial := filepath.Join(h.Dir, "sr.serial")
	defineGuest(t, h, GuestOptions{Name: "sr", Serial: serial, ACPI: true})
	MustVirsh(t, h.URI(), "start", "sr")
	first := WaitTicks(t, serial, 2, 60*time.Second)
	pids := h.QEMUPids()

	MustVirsh(t, h.URI(), "reboot", "sr")
	deadline := time.Now().Add(90 * time.Second)
	for {
		if tk, ok := LastTick(serial); ok && tk.BootID != first.BootID && tk.N > 2 {
			break
		}
		if time.Now().After(deadline) {
			data, _ := os.ReadFile(serial)
			t.Fatalf("no new boot after virsh reboot; serial:\n%s", tail(string(data), 10))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if data, _ := os.ReadFile(serial); !strings.Contains(string(data), "GUEST POWERDOWN id="+first.BootID) {
		t.Errorf("the guest did not see the power button before the reboot")
	}
	if st := domstate(t, h, "sr"); !strings.HasPrefix(st, "running") {
		t.Errorf("after reboot: %q", st)
	}
	if now := h.QEMUPids(); len(now) != 1 || len(pids) != 1 || now[0] != pids[0] {
		t.Errorf("reboot should keep the same QEMU: %v -> %v", pids, now)
	}

	MustVirsh(t, h.URI(), "suspend", "sr")
	if r := Virsh(t, h.URI(), "shutdown", "sr"); r.Err == nil || !strings.Contains(r.Stderr, "domain is not running") {
		t.Errorf("shutdown of a paused guest: %s", r)
	}
	MustVirsh(t, h.URI(), "resume", "sr")

	MustVirsh(t, h.URI(), "shutdown", "sr")
	deadline = time.Now().Add(60 * time.Second)
	for domstate(t, h, "sr") != "shut off (shutdown)" {
		if time.Now().After(deadline) {
			t.Fatalf("after virsh shutdown: %q", domstate(t, h, "sr"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if p := h.QEMUPids(); len(p) != 0 {
		t.Errorf("QEMU still running after the guest powered off: %v", p)
	}
}

// TestEmulatedTPM: a guest with <tpm model='tpm-crb'><backend
// type='emulator' version='2.0'/> gets a manufactured TPM (swtpm_setup,
// once) and an swtpm process that QEMU drives (query-tpm shows it); the
// TPM's state migrates with the guest (the destination's swtpm starts on
// an empty state, QEMU carries the state over); swtpm ends with QEMU, and
// undefine removes the state.
func TestEmulatedTPM(t *testing.T) {
	deps.Require(t, "virsh", "qemu-system-x86_64", "swtpm", "swtpm_setup")
	t.Parallel()
	a := StartHost(t, HostOptions{Name: "tpm-a"})
	b := StartHost(t, HostOptions{Name: "tpm-b"})
	serial := filepath.Join(a.Dir, "tpm.serial")
	xml := strings.Replace(GuestXML(t, GuestOptions{Name: "tpm", Serial: serial}), "<devices>\n",
		"<devices>\n    <tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm>\n", 1)
	p := filepath.Join(a.Dir, "tpm.xml")
	os.WriteFile(p, []byte(xml), 0o644)
	MustVirsh(t, a.URI(), "define", p)
	MustVirsh(t, a.URI(), "start", "tpm")
	before := WaitTicks(t, serial, 2, 60*time.Second)
	uuid := strings.TrimSpace(MustVirsh(t, a.URI(), "domuuid", "tpm"))
	state := filepath.Join(a.Dir, "state", "qemu", "swtpm", uuid, "tpm2", "tpm2-00.permall")
	if _, err := os.Stat(state); err != nil {
		t.Fatalf("no manufactured TPM state: %v", err)
	}
	q := MustVirsh(t, a.URI(), "qemu-monitor-command", "tpm", `{"execute":"query-tpm"}`)
	if !strings.Contains(q, `"model":"tpm-crb"`) || !strings.Contains(q, `"type":"emulator"`) {
		t.Fatalf("query-tpm: %s", q)
	}
	swtpms := func(dir string) int {
		out, _ := exec.Command("pgrep", "-f", "swtpm socket .*"+dir).Output()
		return len(strings.Fields(string(out)))
	}
	if n := swtpms(a.Dir); n != 1 {
		t.Fatalf("%d swtpm processes for the guest, want 1", n)
	}
	if dx := MustVirsh(t, a.URI(), "dumpxml", "tpm"); !strings.Contains(dx, "<alias name='tpm0'/>") {
		t.Errorf("live XML without the TPM:\n%s", dx)
	}

	if r := run(t, 2*time.Minute, "virsh", "-c", a.URI(), "migrate", "--live", "tpm", b.URI()); r.Err != nil {
		t.Fatalf("migrate: %s", r)
	}
	checkMoved(t, a, b, "tpm", serial, before)
	if q := MustVirsh(t, b.URI(), "qemu-monitor-command", "tpm", `{"execute":"query-tpm"}`); !strings.Contains(q, `"model":"tpm-crb"`) {
		t.Errorf("query-tpm on the destination: %s", q)
	}
	if n := swtpms(b.Dir); n != 1 {
		t.Errorf("%d swtpm processes on the destination, want 1", n)
	}
	deadline := time.Now().Add(10 * time.Second)
	for swtpms(a.Dir) != 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if n := swtpms(a.Dir); n != 0 {
		t.Errorf("the source's swtpm outlived its QEMU")
	}
	MustVirsh(t, b.URI(), "destroy", "tpm")
	MustVirsh(t, a.URI(), "undefine", "tpm")
	if _, err := os.Stat(filepath.Dir(filepath.Dir(state))); !os.IsNotExist(err) {
		t.Errorf("undefine left the TPM state: %v", err)
	}
}
