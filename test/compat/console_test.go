package compat_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govirtd/govirtd/test/deps"
)

// ptyGuest defines and starts the test guest with its serial port on a
// pty and a console on it, as virt-install gives guests.
func ptyGuest(t *testing.T, h *Host, name string) {
	t.Helper()
	x := GuestXML(t, GuestOptions{Name: name, Serial: "unused"})
	x = strings.Replace(x, `<serial type='file'>
      <source path='unused' append='on'/>
      <target port='0'/>
    </serial>`, `<serial type='pty'><target port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>`, 1)
	path := filepath.Join(h.Dir, name+".xml")
	os.WriteFile(path, []byte(x), 0o644)
	MustVirsh(t, h.UnixURI(), "define", path)
	MustVirsh(t, h.UnixURI(), "start", name)
	t.Cleanup(func() { Virsh(t, h.UnixURI(), "destroy", name) })
}

// TestConsoleStream: python-libvirt's openConsole streams the guest's
// serial output (its ticks, counting up); a second open is refused while
// the first is active, a forced one takes the console over and ends the
// first stream; a domain that is not running has no console.
func TestConsoleStream(t *testing.T) {
	deps.Require(t, "qemu-system-x86_64")
	h := StartHost(t, HostOptions{})
	ptyGuest(t, h, "con")
	script := `
import sys, re, time, libvirt
c = libvirt.open(sys.argv[1])
d = c.lookupByName("con")
def ticks(st, want, limit=120):
    buf, seen, deadline = b"", [], time.time() + limit
    while len(seen) < want and time.time() < deadline:
        data = st.recv(4096)
        if isinstance(data, int):
            continue
        if not data:
            raise SystemExit("console ended early")
        buf += data
        seen = [int(n) for n in re.findall(rb"GUEST TICK id=[0-9a-f]+ n=(\d+) mism=0", buf)]
    if len(seen) < want:
        raise SystemExit("only %d ticks" % len(seen))
    return seen
st = c.newStream(0)
d.openConsole(None, st, 0)
a = ticks(st, 3)
assert a == sorted(a) and a[-1] > a[0], a
try:
    d.openConsole(None, c.newStream(0), 0)
    raise SystemExit("second open allowed")
except libvirt.libvirtError as e:
    print("second:", e.get_error_code(), e.get_error_message())
st2 = c.newStream(0)
d.openConsole(None, st2, libvirt.VIR_DOMAIN_CONSOLE_FORCE)
end = time.time() + 10
while time.time() < end:
    try:
        data = st.recv(4096)
    except libvirt.libvirtError as e:
        print("first ended with an error:", e)
        break
    if data == b"" or data == 0:
        print("first ended")
        break
b = ticks(st2, 2)
assert b[0] > a[-1], (a, b)
st2.finish()
print("ok")
`
	r := Python(t, script, h.UnixURI())
	if r.Err != nil {
		t.Fatalf("python: %s", r)
	}
	mustContain(t, "python", r.Stdout, "second: 9 operation failed: Active console session exists for this domain", "first ended", "ok")

	MustVirsh(t, h.UnixURI(), "destroy", "con")
	mustFail(t, h.UnixURI(), "domain is not running", "console", "con")
}

// TestVirshConsole: virsh console, in a terminal as an operator runs it,
// shows the guest's ticks.
func TestVirshConsole(t *testing.T) {
	deps.Require(t, "qemu-system-x86_64", "script", "virsh")
	h := StartHost(t, HostOptions{})
	ptyGuest(t, h, "vcon")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	virsh := deps.Command(t, "virsh")
	cmd := exec.CommandContext(ctx, deps.Command(t, "script"), "-qfec", virsh+" -c '"+h.UnixURI()+"' console vcon --force", "/dev/null")
	// script's stdin is a pipe kept open: virsh waits for input until the
	// test is done.
	stdin, _ := cmd.StdinPipe()
	defer stdin.Close()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	sc := bufio.NewScanner(out)
	ticks, lines := 0, []string{}
	for sc.Scan() && ticks < 2 {
		lines = append(lines, sc.Text())
		if tickLine.MatchString(sc.Text()) {
			ticks++
		}
	}
	if ticks < 2 {
		t.Fatalf("virsh console showed %d ticks:\n%s", ticks, strings.Join(lines, "\n"))
	}
	if !strings.Contains(strings.Join(lines, "\n"), "Connected to domain 'vcon'") {
		t.Errorf("no virsh banner:\n%s", strings.Join(lines, "\n"))
	}
}
