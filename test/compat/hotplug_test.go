package compat_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govirtd/govirtd/test/deps"
)

// hotplugGuest defines and starts a test guest with ACPI (the guest
// releases hot-unplugged PCI devices through ACPI) after edit has
// changed its XML, and waits for it to tick.
func hotplugGuest(t *testing.T, h *Host, uri, name string, memMiB int, edit func(string) string) (serial string) {
	t.Helper()
	serial = filepath.Join(h.Dir, name+".serial")
	xml := GuestXML(t, GuestOptions{Name: name, Serial: serial, ACPI: true, MemoryMiB: memMiB})
	if edit != nil {
		xml = edit(xml)
	}
	path := filepath.Join(h.Dir, name+".xml")
	if err := os.WriteFile(path, []byte(xml), 0o644); err != nil {
		t.Fatal(err)
	}
	MustVirsh(t, uri, "define", path)
	MustVirsh(t, uri, "start", name)
	WaitTicks(t, serial, 2, 90*time.Second)
	return serial
}

// waitFor polls cond for up to timeout and fails the test with what if
// it never holds.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		ok, s := cond()
		if ok {
			return
		}
		last = s
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; last seen:\n%s", what, timeout, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// wantVirshError runs virsh expecting it to fail with msg on stderr.
func wantVirshError(t *testing.T, uri, msg string, args ...string) {
	t.Helper()
	r := Virsh(t, uri, args...)
	if r.Err == nil || !strings.Contains(r.Stderr, msg) {
		t.Errorf("virsh %s: want error %q, got %s", strings.Join(args, " "), msg, r)
	}
}

// TestHotplugDisk: a qcow2 disk attached to a running guest (live and
// config) shows in domblklist, both XMLs and QEMU's block layer under the
// node names and id a disk defined with the domain has; detached, it is
// gone from all of them. Duplicate targets, missing disks, and live
// changes to a stopped domain are refused as libvirt refuses them.
func TestHotplugDisk(t *testing.T) {
	deps.Require(t, "virsh", "qemu-system-x86_64", "qemu-img")
	h := StartHost(t, HostOptions{})
	uri := h.URI()
	// The guest starts with vda (block nodes libvirt-1-*).
	vda := filepath.Join(h.Dir, "vda.raw")
	if r := run(t, time.Minute, "qemu-img", "create", "-f", "raw", vda, "8M"); r.Err != nil {
		t.Fatal(r)
	}
	hotplugGuest(t, h, uri, "hpd", 0, func(x string) string {
		return strings.Replace(x, "<devices>\n", "<devices>\n    <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='"+vda+"'/><target dev='vda' bus='virtio'/></disk>\n", 1)
	})

	img := filepath.Join(h.Dir, "extra.qcow2")
	if r := run(t, time.Minute, "qemu-img", "create", "-f", "qcow2", img, "16M"); r.Err != nil {
		t.Fatal(r)
	}
	MustVirsh(t, uri, "attach-disk", "hpd", img, "vdb", "--driver", "qemu", "--subdriver", "qcow2", "--targetbus", "virtio", "--live", "--config")
	if out := MustVirsh(t, uri, "domblklist", "hpd"); !strings.Contains(out, "vdb") || !strings.Contains(out, img) {
		t.Errorf("domblklist after attach-disk:\n%s", out)
	}
	live := MustVirsh(t, uri, "dumpxml", "hpd")
	for _, want := range []string{"<target dev='vdb' bus='virtio'/>", "<alias name='virtio-disk1'/>", "<source file='" + img + "' index='2'/>", "<source file='" + vda + "' index='1'/>", "<driver name='qemu' type='qcow2'/>"} {
		if !strings.Contains(live, want) {
			t.Errorf("live XML lacks %q:\n%s", want, live)
		}
	}
	if inactive := MustVirsh(t, uri, "dumpxml", "--inactive", "hpd"); !strings.Contains(inactive, "<target dev='vdb' bus='virtio'/>") || strings.Contains(inactive, "<alias") {
		t.Errorf("inactive XML after attach-disk --config:\n%s", inactive)
	}
	// QEMU has the disk's nodes and device under libvirt's names.
	block := MustVirsh(t, uri, "qemu-monitor-command", "--hmp", "hpd", "info block")
	for _, want := range []string{"libvirt-2-format: " + img + " (qcow2)", "libvirt-1-format: " + vda + " (raw)", "/machine/peripheral/virtio-disk1/virtio-backend"} {
		if !strings.Contains(block, want) {
			t.Errorf("info block lacks %q:\n%s", want, block)
		}
	}
	if out := MustVirsh(t, uri, "domblkinfo", "hpd", "vdb"); !strings.Contains(out, "Capacity:       16777216") {
		t.Errorf("domblkinfo vdb:\n%s", out)
	}
	// Block statistics find the new disk's node.
	if out := MustVirsh(t, uri, "domstats", "--block", "hpd"); !strings.Contains(out, "block.1.name=vdb") || !strings.Contains(out, "block.1.capacity=16777216") {
		t.Errorf("domstats --block:\n%s", out)
	}

	wantVirshError(t, uri, "Requested operation is not valid: target vdb already exists",
		"attach-disk", "hpd", img, "vdb", "--subdriver", "qcow2", "--live", "--config")
	wantVirshError(t, uri, "operation failed: target vdb already exists",
		"attach-disk", "hpd", img, "vdb", "--subdriver", "qcow2", "--live")

	MustVirsh(t, uri, "detach-disk", "hpd", "vdb", "--live", "--config")
	waitFor(t, 30*time.Second, "vdb gone from the live domain", func() (bool, string) {
		out := MustVirsh(t, uri, "domblklist", "hpd")
		return !strings.Contains(out, "vdb") && strings.Contains(out, "vda"), out
	})
	if live := MustVirsh(t, uri, "dumpxml", "hpd"); strings.Contains(live, "vdb") {
		t.Errorf("live XML after detach-disk:\n%s", live)
	}
	if inactive := MustVirsh(t, uri, "dumpxml", "--inactive", "hpd"); strings.Contains(inactive, "vdb") {
		t.Errorf("inactive XML after detach-disk --config:\n%s", inactive)
	}
	if block := MustVirsh(t, uri, "qemu-monitor-command", "--hmp", "hpd", "info block"); strings.Contains(block, img) {
		t.Errorf("info block after detach:\n%s", block)
	}

	diskXML := filepath.Join(h.Dir, "vdb.xml")
	os.WriteFile(diskXML, []byte(fmt.Sprintf("<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='%s'/><target dev='vdb' bus='virtio'/></disk>", img)), 0o644)
	wantVirshError(t, uri, "device not found: disk vdb not found", "detach-device", "hpd", diskXML, "--live")
	wantVirshError(t, uri, "device not found: no target device vdb", "detach-device", "hpd", diskXML, "--config")

	// Attached again, live only: the same alias.
	MustVirsh(t, uri, "attach-device", "hpd", diskXML, "--live")
	if live := MustVirsh(t, uri, "dumpxml", "hpd"); !strings.Contains(live, "<source file='"+img+"' index='2'/>") || !strings.Contains(live, "<alias name='virtio-disk1'/>") {
		t.Errorf("live XML after a second attach:\n%s", live)
	}
	if inactive := MustVirsh(t, uri, "dumpxml", "--inactive", "hpd"); strings.Contains(inactive, "vdb") {
		t.Errorf("attach-device --live changed the persistent XML:\n%s", inactive)
	}

	MustVirsh(t, uri, "destroy", "hpd")
	wantVirshError(t, uri, "Requested operation is not valid: domain is not running",
		"attach-disk", "hpd", img, "vdb", "--subdriver", "qcow2", "--live")
	// Config only on the stopped domain; it starts with the disk.
	MustVirsh(t, uri, "attach-disk", "hpd", img, "vdc", "--subdriver", "qcow2", "--config")
	if inactive := MustVirsh(t, uri, "dumpxml", "--inactive", "hpd"); !strings.Contains(inactive, "<target dev='vdc' bus='virtio'/>") {
		t.Errorf("inactive XML after attach-disk --config:\n%s", inactive)
	}
	MustVirsh(t, uri, "start", "hpd")
	if block := MustVirsh(t, uri, "qemu-monitor-command", "--hmp", "hpd", "info block"); !strings.Contains(block, img) {
		t.Errorf("info block after a start with vdc:\n%s", block)
	}
	MustVirsh(t, uri, "destroy", "hpd")
	MustVirsh(t, uri, "undefine", "hpd")
}

// dominfoField is one "Name: value" line of virsh dominfo.
func dominfoField(t *testing.T, uri, name, field string) string {
	t.Helper()
	for _, l := range lines(MustVirsh(t, uri, "dominfo", name)) {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == field {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// TestSetMem: setmem --live moves the balloon down and up again (dominfo
// follows the guest), beyond the maximum is refused; --config and
// setmaxmem --config change the persistent definition only; a domain
// without a balloon, or a stopped one, is refused live.
func TestSetMem(t *testing.T) {
	deps.Require(t, "virsh", "qemu-system-x86_64")
	h := StartHost(t, HostOptions{})
	uri := h.URI()
	hotplugGuest(t, h, uri, "sm", 256, nil)
	if got := dominfoField(t, uri, "sm", "Used memory"); got != "262144 KiB" {
		t.Fatalf("Used memory at start: %q", got)
	}
	for _, kib := range []int{196608, 262144} {
		MustVirsh(t, uri, "setmem", "sm", fmt.Sprintf("%dK", kib), "--live")
		want := fmt.Sprintf("%d KiB", kib)
		waitFor(t, 60*time.Second, "Used memory "+want, func() (bool, string) {
			got := dominfoField(t, uri, "sm", "Used memory")
			return got == want, got
		})
		if live := MustVirsh(t, uri, "dumpxml", "sm"); !strings.Contains(live, fmt.Sprintf("<currentMemory unit='KiB'>%d</currentMemory>", kib)) {
			t.Errorf("live XML after setmem %d:\n%s", kib, live)
		}
	}
	wantVirshError(t, uri, "invalid argument: cannot set memory higher than max memory", "setmem", "sm", "300M", "--live")
	wantVirshError(t, uri, "Requested operation is not valid: cannot resize the maximum memory on an active domain", "setmaxmem", "sm", "300M", "--live")

	MustVirsh(t, uri, "setmem", "sm", "128M", "--config")
	if inactive := MustVirsh(t, uri, "dumpxml", "--inactive", "sm"); !strings.Contains(inactive, "<currentMemory unit='KiB'>131072</currentMemory>") {
		t.Errorf("inactive XML after setmem --config:\n%s", inactive)
	}
	if got := dominfoField(t, uri, "sm", "Used memory"); got != "262144 KiB" {
		t.Errorf("setmem --config changed the live size: %q", got)
	}
	MustVirsh(t, uri, "setmaxmem", "sm", "384M", "--config")
	inactive := MustVirsh(t, uri, "dumpxml", "--inactive", "sm")
	if !strings.Contains(inactive, "<memory unit='KiB'>393216</memory>") || !strings.Contains(inactive, "<currentMemory unit='KiB'>131072</currentMemory>") {
		t.Errorf("inactive XML after setmaxmem --config:\n%s", inactive)
	}
	if got := dominfoField(t, uri, "sm", "Max memory"); got != "262144 KiB" {
		t.Errorf("setmaxmem --config changed the live maximum: %q", got)
	}
	MustVirsh(t, uri, "destroy", "sm")
	wantVirshError(t, uri, "Requested operation is not valid: domain is not running", "setmem", "sm", "128M", "--live")
	// A stopped domain's maximum shrinks its current size with it.
	MustVirsh(t, uri, "setmaxmem", "sm", "100M")
	if got := dominfoField(t, uri, "sm", "Used memory"); got != "102400 KiB" {
		t.Errorf("Used memory after setmaxmem below it: %q", got)
	}

	// No balloon: the running domain's memory cannot change.
	nb := filepath.Join(h.Dir, "nb.xml")
	os.WriteFile(nb, []byte(strings.Replace(GuestXML(t, GuestOptions{Name: "nb", Serial: filepath.Join(h.Dir, "nb.serial")}),
		"</devices>", "  <memballoon model='none'/>\n  </devices>", 1)), 0o644)
	MustVirsh(t, uri, "create", nb)
	wantVirshError(t, uri, "Requested operation is not valid: Unable to change memory of active domain without the balloon device and guest OS balloon driver",
		"setmem", "nb", "64M", "--live")
	wantVirshError(t, uri, "Requested operation is not valid: transient domains do not have any persistent config",
		"setmem", "nb", "64M", "--config")
	MustVirsh(t, uri, "destroy", "nb")
}

// TestSetVcpus: a guest started with 1 of 2 vCPUs gets its second one
// live (QEMU has it, dominfo and vcpucount say so), beyond the maximum is
// refused, and --config sets the persistent count and maximum.
func TestSetVcpus(t *testing.T) {
	deps.Require(t, "virsh", "qemu-system-x86_64")
	h := StartHost(t, HostOptions{})
	uri := h.URI()
	hotplugGuest(t, h, uri, "sv", 0, func(x string) string {
		return strings.Replace(x, "<vcpu>1</vcpu>", "<vcpu current='1'>2</vcpu>", 1)
	})
	if got := dominfoField(t, uri, "sv", "CPU(s)"); got != "1" {
		t.Fatalf("CPU(s) at start: %q", got)
	}
	MustVirsh(t, uri, "setvcpus", "sv", "2", "--live")
	if got := dominfoField(t, uri, "sv", "CPU(s)"); got != "2" {
		t.Errorf("CPU(s) after setvcpus 2 --live: %q", got)
	}
	cpus := MustVirsh(t, uri, "qemu-monitor-command", "--hmp", "sv", "info hotpluggable-cpus")
	if !strings.Contains(cpus, `qom_path: "/machine/peripheral/vcpu1"`) {
		t.Errorf("QEMU's CPUs after the plug:\n%s", cpus)
	}
	if live := MustVirsh(t, uri, "dumpxml", "sv"); !strings.Contains(live, "<vcpu placement='static'>2</vcpu>") {
		t.Errorf("live XML after setvcpus:\n%s", live)
	}
	if inactive := MustVirsh(t, uri, "dumpxml", "--inactive", "sv"); !strings.Contains(inactive, "<vcpu placement='static' current='1'>2</vcpu>") {
		t.Errorf("setvcpus --live changed the persistent XML:\n%s", inactive)
	}
	wantVirshError(t, uri, "invalid argument: requested vcpus is greater than max allowable vcpus for the live domain: 3 > 2", "setvcpus", "sv", "3", "--live")

	// Unplugged again: the guest (ACPI) lets the CPU go. Should that
	// take longer than the 5 s libvirt waits, the call fails as
	// libvirt's does and the count follows when QEMU reports the CPU
	// gone. (Plugging it back in then crashes QEMU 7.2 under TCG, a
	// segfault in QEMU itself, so the test does not.)
	if r := Virsh(t, uri, "setvcpus", "sv", "1", "--live"); r.Err != nil && !strings.Contains(r.Stderr, "operation failed: vcpu unplug request timed out. Unplug result must be manually inspected in the domain") {
		t.Fatalf("setvcpus 1 --live: %s", r)
	}
	waitFor(t, 60*time.Second, "CPU(s) 1 after the unplug", func() (bool, string) {
		got := dominfoField(t, uri, "sv", "CPU(s)")
		return got == "1", got + "\n" + MustVirsh(t, uri, "qemu-monitor-command", "--hmp", "sv", "info hotpluggable-cpus")
	})
	if cpus := MustVirsh(t, uri, "qemu-monitor-command", "--hmp", "sv", "info hotpluggable-cpus"); strings.Contains(cpus, "vcpu1") {
		t.Errorf("QEMU's CPUs after the unplug:\n%s", cpus)
	}

	MustVirsh(t, uri, "setvcpus", "sv", "2", "--config")
	if inactive := MustVirsh(t, uri, "dumpxml", "--inactive", "sv"); !strings.Contains(inactive, "<vcpu placement='static'>2</vcpu>") {
		t.Errorf("inactive XML after setvcpus 2 --config:\n%s", inactive)
	}
	MustVirsh(t, uri, "setvcpus", "sv", "4", "--maximum", "--config")
	if inactive := MustVirsh(t, uri, "dumpxml", "--inactive", "sv"); !strings.Contains(inactive, "<vcpu placement='static' current='2'>4</vcpu>") {
		t.Errorf("inactive XML after setvcpus 4 --maximum --config:\n%s", inactive)
	}
	wantVirshError(t, uri, "invalid argument: requested vcpus is greater than max allowable vcpus for the persistent domain: 5 > 4", "setvcpus", "sv", "5", "--config")
	MustVirsh(t, uri, "destroy", "sv")
	wantVirshError(t, uri, "Requested operation is not valid: domain is not running", "setvcpus", "sv", "2", "--live")
	// The next start has the new count.
	MustVirsh(t, uri, "start", "sv")
	if got := dominfoField(t, uri, "sv", "CPU(s)"); got != "2" {
		t.Errorf("CPU(s) after a start with 2 of 4: %q", got)
	}
	MustVirsh(t, uri, "destroy", "sv")
}

// TestHotplugUnplugPending: a machine without ACPI takes no PCI hotplug
// (QEMU's error, nothing left behind); a guest that ignores the unplug
// request keeps the disk: detach-disk returns after libvirt's 5 s wait
// anyway, and the disk stays in the live definition and QEMU. The
// read-only socket refuses the changes.
func TestHotplugUnplugPending(t *testing.T) {
	deps.Require(t, "virsh", "qemu-system-x86_64", "qemu-img")
	h := StartHost(t, HostOptions{})
	uri := h.URI()
	serial := filepath.Join(h.Dir, "np.serial")
	path := filepath.Join(h.Dir, "np.xml")
	os.WriteFile(path, []byte(GuestXML(t, GuestOptions{Name: "np", Serial: serial})), 0o644)
	MustVirsh(t, uri, "define", path)
	MustVirsh(t, uri, "start", "np")
	WaitTicks(t, serial, 2, 90*time.Second)
	img := filepath.Join(h.Dir, "np.qcow2")
	if r := run(t, time.Minute, "qemu-img", "create", "-f", "qcow2", img, "8M"); r.Err != nil {
		t.Fatal(r)
	}
	for _, args := range [][]string{
		{"attach-disk", "np", img, "vdb", "--subdriver", "qcow2", "--live"},
		{"setmem", "np", "64M", "--live"},
		{"setvcpus", "np", "1", "--config"},
		{"setmaxmem", "np", "64M", "--config"},
	} {
		wantVirshError(t, h.ROURI(), "operation forbidden: read only access prevents virDomain", args...)
	}
	// Without ACPI the i440fx bus takes no hotplug: QEMU's refusal, and
	// the block nodes added before it are gone again.
	wantVirshError(t, uri, "internal error: unable to execute QEMU command 'device_add': Bus 'pci.0' does not support hotplugging",
		"attach-disk", "np", img, "vdb", "--subdriver", "qcow2", "--live")
	if block := MustVirsh(t, uri, "qemu-monitor-command", "--hmp", "np", "info block"); strings.Contains(block, img) {
		t.Errorf("info block after the failed attach:\n%s", block)
	}
	if live := MustVirsh(t, uri, "dumpxml", "np"); strings.Contains(live, "vdb") {
		t.Errorf("live XML after the failed attach:\n%s", live)
	}
	MustVirsh(t, uri, "destroy", "np")

	// ACPI in the machine, but a guest that ignores it (acpi=off).
	hotplugGuest(t, h, uri, "np2", 0, func(x string) string {
		return strings.Replace(x, "tick_ms=200", "acpi=off tick_ms=200", 1)
	})
	MustVirsh(t, uri, "attach-disk", "np2", img, "vdb", "--subdriver", "qcow2", "--live")
	start := time.Now()
	MustVirsh(t, uri, "detach-disk", "np2", "vdb", "--live")
	if took := time.Since(start); took < 4*time.Second {
		t.Errorf("detach-disk returned after %v, before the guest could answer", took)
	}
	if out := MustVirsh(t, uri, "domblklist", "np2"); !strings.Contains(out, "vdb") {
		t.Errorf("domblklist while the unplug is pending:\n%s", out)
	}
	if block := MustVirsh(t, uri, "qemu-monitor-command", "--hmp", "np2", "info block"); !strings.Contains(block, img) {
		t.Errorf("info block while the unplug is pending:\n%s", block)
	}
	MustVirsh(t, uri, "destroy", "np2")
}

// TestHotplugCDROMMedia: virsh change-media inserts a medium into the
// running guest's empty CD-ROM (QEMU's drive has it, under the next
// node name), and ejects it; --config changes the persistent drive.
func TestHotplugCDROMMedia(t *testing.T) {
	deps.Require(t, "virsh", "qemu-system-x86_64")
	h := StartHost(t, HostOptions{})
	uri := h.URI()
	hotplugGuest(t, h, uri, "cd", 0, func(x string) string {
		return strings.Replace(x, "<devices>\n", "<devices>\n    <disk type='file' device='cdrom'><driver name='qemu' type='raw'/><target dev='hdc' bus='ide'/><readonly/></disk>\n", 1)
	})
	iso := filepath.Join(h.Dir, "media.iso")
	if err := os.WriteFile(iso, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	MustVirsh(t, uri, "change-media", "cd", "hdc", iso, "--insert", "--live")
	block := MustVirsh(t, uri, "qemu-monitor-command", "--hmp", "cd", "info block")
	if !strings.Contains(block, iso+" (raw, read-only)") || !strings.Contains(block, "Attached to:      ide0-1-0") {
		t.Errorf("info block after the insert:\n%s", block)
	}
	if live := MustVirsh(t, uri, "dumpxml", "cd"); !strings.Contains(live, "<source file='"+iso+"' index='1'/>") {
		t.Errorf("live XML after the insert:\n%s", live)
	}
	if inactive := MustVirsh(t, uri, "dumpxml", "--inactive", "cd"); strings.Contains(inactive, iso) {
		t.Errorf("change-media --live changed the persistent XML:\n%s", inactive)
	}
	MustVirsh(t, uri, "change-media", "cd", "hdc", "--eject", "--live")
	if block := MustVirsh(t, uri, "qemu-monitor-command", "--hmp", "cd", "info block"); strings.Contains(block, iso) {
		t.Errorf("info block after the eject:\n%s", block)
	}
	if live := MustVirsh(t, uri, "dumpxml", "cd"); strings.Contains(live, iso) {
		t.Errorf("live XML after the eject:\n%s", live)
	}
	MustVirsh(t, uri, "change-media", "cd", "hdc", iso, "--insert", "--config")
	if inactive := MustVirsh(t, uri, "dumpxml", "--inactive", "cd"); !strings.Contains(inactive, "<source file='"+iso+"'/>") {
		t.Errorf("inactive XML after change-media --config:\n%s", inactive)
	}
	if live := MustVirsh(t, uri, "dumpxml", "cd"); strings.Contains(live, iso) {
		t.Errorf("change-media --config changed the live XML:\n%s", live)
	}
	// Only removable media change in place.
	nic := filepath.Join(h.Dir, "nic.xml")
	os.WriteFile(nic, []byte("<interface type='user'><mac address='52:54:00:11:22:33'/></interface>"), 0o644)
	wantVirshError(t, uri, "unsupported configuration: live update of device 'interface' is not supported", "update-device", "cd", nic, "--live")
	MustVirsh(t, uri, "destroy", "cd")
}
