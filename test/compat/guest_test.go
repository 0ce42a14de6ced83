package compat_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The test guest (test/guest): a kernel and an initramfs whose /init prints
// a boot id and a rising counter on its serial console.
var (
	guestOnce   sync.Once
	guestKernel string
	guestInitrd string
	guestErr    error
)

// testGuest builds the guest once per test run (build.sh caches across runs).
func testGuest(t *testing.T) (kernel, initrd string) {
	t.Helper()
	guestOnce.Do(func() {
		root, err := filepath.Abs("../..")
		if err != nil {
			guestErr = err
			return
		}
		cmd := exec.Command(filepath.Join(root, "test/guest/build.sh"))
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			guestErr = fmt.Errorf("build test guest: %v\n%s", err, stderr.String())
			return
		}
		paths := lines(string(out))
		if len(paths) != 2 {
			guestErr = fmt.Errorf("build.sh printed %q, want two paths", out)
			return
		}
		guestKernel, guestInitrd = paths[0], paths[1]
	})
	if guestErr != nil {
		t.Fatal(guestErr)
	}
	return guestKernel, guestInitrd
}

// GuestOptions shape a test guest domain.
type GuestOptions struct {
	Name      string
	MemoryMiB int // default 128
	DirtyMB   int // memory the guest rewrites and checks
	DirtyRate int // MiB/s
	// DirtySparse: each rewrite changes only a page's header (dirty_sparse),
	// so a delta encoding such as XBZRLE sends a few bytes of a dirty page.
	DirtySparse bool
	Serial      string // serial log path (type file, append)
	// ACPI gives the guest ACPI (<features><acpi/>, no acpi=off), so it
	// powers off at the ACPI power button (shutdown, reboot).
	ACPI bool
	// TickMS is the guest's tick (default 200): it rewrites DirtyRate's
	// worth of pages each tick, so a shorter tick spreads the same rate
	// over more, smaller bursts.
	TickMS int
}

// GuestXML is a domain definition for the test guest, with a serial
// console appended to a file so the test can read its ticks.
func GuestXML(t *testing.T, o GuestOptions) string {
	t.Helper()
	kernel, initrd := testGuest(t)
	if o.MemoryMiB == 0 {
		o.MemoryMiB = 128
	}
	if o.TickMS == 0 {
		o.TickMS = 200
	}
	cmdline := fmt.Sprintf("console=ttyS0 quiet cryptomgr.notests acpi=off pti=on tick_ms=%d", o.TickMS)
	features := ""
	if o.ACPI {
		cmdline = strings.Replace(cmdline, " acpi=off", "", 1)
		features = "\n  <features><acpi/></features>"
	}
	if o.DirtyMB > 0 {
		cmdline += fmt.Sprintf(" dirty_mb=%d dirty_rate_mb=%d", o.DirtyMB, o.DirtyRate)
		if o.DirtySparse {
			cmdline += " dirty_sparse=1"
		}
	}
	return fmt.Sprintf(`<domain type='qemu'>
  <name>%s</name>
  <memory unit='MiB'>%d</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>%s</kernel>
    <initrd>%s</initrd>
    <cmdline>%s</cmdline>
  </os>%s
  <devices>
    <serial type='file'>
      <source path='%s' append='on'/>
      <target port='0'/>
    </serial>
  </devices>
</domain>
`, o.Name, o.MemoryMiB, kernel, initrd, cmdline, features, o.Serial)
}

// Tick is one GUEST TICK line.
type Tick struct {
	BootID string
	N      int
	Mism   int
}

var tickLine = regexp.MustCompile(`GUEST TICK id=([0-9a-f]+) n=(\d+) mism=(\d+)`)

// Ticks parses a serial log.
func Ticks(path string) []Tick {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []Tick
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := tickLine.FindStringSubmatch(sc.Text()); m != nil {
			n, _ := strconv.Atoi(m[2])
			mism, _ := strconv.Atoi(m[3])
			out = append(out, Tick{BootID: m[1], N: n, Mism: mism})
		}
	}
	return out
}

// LastTick returns the newest tick in a serial log.
func LastTick(path string) (Tick, bool) {
	ts := Ticks(path)
	if len(ts) == 0 {
		return Tick{}, false
	}
	return ts[len(ts)-1], true
}

// WaitTicks waits until the guest has ticked beyond n (and returns the
// newest tick), or fails the test.
func WaitTicks(t *testing.T, path string, beyond int, timeout time.Duration) Tick {
	t.Helper()
	if tk, ok := waitTicks(path, beyond, timeout); ok {
		return tk
	}
	data, _ := os.ReadFile(path)
	t.Fatalf("guest did not tick past %d within %v; serial log:\n%s", beyond, timeout, tail(string(data), 20))
	return Tick{}
}

// logStuckGuest logs what the destination QEMU says of a guest that runs
// but no longer ticks after a migration. Seen twice under the full suite's
// load, never alone: once after a libvirtd -> govirtd --p2p post-copy
// move, once after a govirtd --parallel one. The vCPU's registers and the
// local APIC tell a guest spinning in the kernel from one waiting for a
// timer interrupt that never comes.
func logStuckGuest(t *testing.T, uri, name string) {
	t.Helper()
	for _, cmd := range []string{`{"execute":"query-status"}`, `{"execute":"query-migrate"}`} {
		r := Virsh(t, uri, "qemu-monitor-command", name, cmd)
		t.Logf("%s on %s: %s %s", cmd, uri, r.Stdout, r.Stderr)
	}
	for _, cmd := range []string{"info registers", "info lapic", "info pic"} {
		for i := 0; i < 2; i++ { // twice: is RIP moving?
			r := Virsh(t, uri, "qemu-monitor-command", "--hmp", name, cmd)
			t.Logf("%s on %s:\n%s%s", cmd, uri, r.Stdout, r.Stderr)
			if cmd != "info registers" {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
}

// waitTicks waits for a tick numbered above beyond; false if none came in
// time.
func waitTicks(path string, beyond int, timeout time.Duration) (Tick, bool) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if tk, ok := LastTick(path); ok && tk.N > beyond {
			return tk, true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return Tick{}, false
}

func tail(s string, n int) string {
	ls := strings.Split(s, "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}
