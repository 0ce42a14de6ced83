package compat_test

import (
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/govirtd/govirtd/test/deps"
)

// TestVirshHostQueries: what a newcomer's first virsh session does, over
// TCP and over the unix socket.
func TestVirshHostQueries(t *testing.T) {
	deps.Require(t, "virsh")
	t.Parallel()
	h := StartHost(t, HostOptions{Name: "hosta"})
	for _, uri := range []string{h.URI(), h.UnixURI()} {
		t.Run(strings.SplitN(uri, ":", 2)[0], func(t *testing.T) {
			out := MustVirsh(t, uri, "version")
			if !strings.Contains(out, "Running hypervisor: QEMU 7.") && !regexp.MustCompile(`Running hypervisor: QEMU \d+\.\d+\.\d+`).MatchString(out) {
				t.Errorf("version output lacks the QEMU version:\n%s", out)
			}
			if got := strings.TrimSpace(MustVirsh(t, uri, "hostname")); got != "hosta" {
				t.Errorf("hostname = %q, want hosta", got)
			}
			if got := strings.TrimSpace(MustVirsh(t, uri, "uri")); got != uri {
				t.Errorf("uri = %q, want %q", got, uri)
			}
			ni := MustVirsh(t, uri, "nodeinfo")
			if !strings.Contains(ni, "CPU model:           x86_64") || !strings.Contains(ni, fmt.Sprintf("CPU(s):              %d", runtime.NumCPU())) {
				t.Errorf("nodeinfo:\n%s", ni)
			}
			capsXML := MustVirsh(t, uri, "capabilities")
			var caps struct {
				UUID   string `xml:"host>uuid"`
				Guests []struct {
					Arch struct {
						Name     string   `xml:"name,attr"`
						Machines []string `xml:"machine"`
					} `xml:"arch"`
				} `xml:"guest"`
			}
			if err := xml.Unmarshal([]byte(capsXML), &caps); err != nil {
				t.Fatalf("capabilities are not XML: %v\n%s", err, capsXML)
			}
			if caps.UUID != h.UUID {
				t.Errorf("capabilities host uuid %q, want the configured %q", caps.UUID, h.UUID)
			}
			found := false
			for _, g := range caps.Guests {
				if g.Arch.Name == "x86_64" {
					for _, m := range g.Arch.Machines {
						found = found || m == "pc"
					}
				}
			}
			if !found {
				t.Errorf("capabilities have no x86_64 guest with machine pc")
			}
			// -q drops the table header; no domains yet means no rows.
			if out := MustVirsh(t, uri, "list", "--all"); strings.TrimSpace(out) != "" {
				t.Errorf("list --all on a fresh host printed %q", out)
			}
		})
	}
}

// TestVirshReadOnlySocket: queries work on the read-only socket; changes
// are refused by the daemon itself, not only by a polite client.
func TestVirshReadOnlySocket(t *testing.T) {
	deps.Require(t, "virsh", "/usr/bin/python3")
	t.Parallel()
	h := StartHost(t, HostOptions{})
	if got := strings.TrimSpace(MustVirsh(t, h.ROURI(), "-r", "hostname")); got != h.Name {
		t.Errorf("read-only hostname = %q", got)
	}
	MustVirsh(t, h.ROURI(), "-r", "list", "--all")
	// A client that does not ask for read-only still gets refused on the
	// -ro socket: the daemon enforces it.
	r := Python(t, `
import sys, libvirt
c = libvirt.open(sys.argv[1])
print(c.getHostname())
try:
    c.defineXML("<domain type='qemu'><name>x</name><memory>65536</memory><os><type>hvm</type></os></domain>")
    print("DEFINED")
except libvirt.libvirtError as e:
    print("ERR", e.get_error_code(), e.get_error_message())
`, h.ROURI())
	if r.Err != nil {
		t.Fatal(r)
	}
	if !strings.Contains(r.Stdout, "ERR 6") && !strings.Contains(r.Stdout, "ERR 29") {
		t.Fatalf("define on the read-only socket was not refused with VIR_ERR_OPERATION_DENIED:\n%s", r)
	}
	if !strings.Contains(r.Stdout, "read only access prevents virDomainDefineXML") {
		t.Errorf("refusal text:\n%s", r)
	}
}

// TestVirshUnsupportedProcedure: a procedure govirtd does not implement gets
// libvirt's own error, and the connection carries on.
func TestVirshUnsupportedProcedure(t *testing.T) {
	deps.Require(t, "virsh")
	t.Parallel()
	h := StartHost(t, HostOptions{})
	r := Virsh(t, h.URI(), "cpu-models", "x86_64")
	if r.Err == nil {
		t.Fatalf("cpu-models succeeded:\n%s", r)
	}
	if !strings.Contains(r.Stderr, "this function is not supported by the connection driver: virConnectGetCPUModelNames") {
		t.Fatalf("cpu-models error:\n%s", r)
	}
	// In one virsh session: the failing command, then a working one.
	r = Virsh(t, h.URI(), "cpu-models x86_64; hostname")
	if !strings.Contains(r.Stdout, h.Name) {
		t.Fatalf("hostname after a refused call in the same session:\n%s", r)
	}
}

// TestPythonLibvirt: python3-libvirt, the other common client.
func TestPythonLibvirt(t *testing.T) {
	deps.Require(t, "/usr/bin/python3")
	t.Parallel()
	h := StartHost(t, HostOptions{Name: "pyhost"})
	r := Python(t, `
import sys, libvirt
c = libvirt.open(sys.argv[1])
print("type", c.getType())
print("host", c.getHostname())
print("ver", c.getVersion())
print("lib", c.getLibVersion())
print("uri", c.getURI())
info = c.getInfo()
print("arch", info[0], "cpus", info[2])
print("doms", len(c.listAllDomains()), c.numOfDomains(), c.numOfDefinedDomains(), c.listDefinedDomains())
print("alive", c.isAlive(), "secure", c.isSecure())
try:
    c.lookupByName("nosuch")
except libvirt.libvirtError as e:
    print("lookup-error", e.get_error_code())
c.close()
`, h.URI())
	if r.Err != nil {
		t.Fatal(r)
	}
	for _, want := range []string{"type QEMU", "host pyhost", "lib 9000000", "uri " + h.URI(), "arch x86_64", "doms 0 0 0 []", "alive 1"} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("python output lacks %q:\n%s", want, r.Stdout)
		}
	}
	if !regexp.MustCompile(`ver [1-9]\d{6}`).MatchString(r.Stdout) {
		t.Errorf("hypervisor version:\n%s", r.Stdout)
	}
}

// TestConfigErrors: a malformed config file is refused with its line, and
// the daemon exits non-zero instead of starting half-configured.
func TestConfigErrors(t *testing.T) {
	t.Parallel()
	h := NewHost(t, HostOptions{Extra: "max_clients = \"many\"\n"})
	r := run(t, 20*time.Second, daemonBin, "-f", h.Config, "--listen")
	if r.Err == nil || strings.Contains(r.Err.Error(), "timed out") {
		t.Fatalf("daemon did not refuse a bad config:\n%s", r)
	}
	if !regexp.MustCompile(`line \d+: max_clients`).MatchString(r.Stderr) {
		t.Errorf("error does not name the line and key:\n%s", r)
	}

	h2 := NewHost(t, HostOptions{Extra: "keepalive_count = [ 1,\n"})
	r = run(t, 20*time.Second, daemonBin, "-f", h2.Config)
	if r.Err == nil || !regexp.MustCompile(`line \d+`).MatchString(r.Stderr) {
		t.Errorf("syntax error not reported with its line:\n%s", r)
	}

	r = run(t, 20*time.Second, daemonBin, "--version")
	if r.Err != nil || !strings.HasPrefix(r.Stdout, "govirtd ") {
		t.Errorf("--version:\n%s", r)
	}
}

// TestUnknownKeysWarn: unknown keys are warnings, not errors.
func TestUnknownKeysWarn(t *testing.T) {
	deps.Require(t, "virsh")
	t.Parallel()
	h := StartHost(t, HostOptions{Extra: "no_such_key = 1\nmdns_adv = 0\n"})
	MustVirsh(t, h.URI(), "hostname")
	h.Stop()
	log := readFile(t, h.LogPath)
	if !strings.Contains(log, `unknown key \"no_such_key\" ignored`) && !strings.Contains(log, `unknown key "no_such_key" ignored`) {
		t.Errorf("no warning for the unknown key in the log:\n%s", log)
	}
}

// TestVirshDomCapabilities: virsh domcapabilities answers for this host's
// QEMU, and refuses an unknown machine in libvirt's words.
func TestVirshDomCapabilities(t *testing.T) {
	deps.Require(t, "virsh", "qemu-system-x86_64")
	t.Parallel()
	h := StartHost(t, HostOptions{})
	out := MustVirsh(t, h.URI(), "domcapabilities", "--virttype", "qemu")
	for _, want := range []string{"<path>/usr/bin/qemu-system-x86_64</path>", "<domain>qemu</domain>", "<machine>pc-i440fx-", "<arch>x86_64</arch>"} {
		if !strings.Contains(out, want) {
			t.Errorf("domcapabilities lacks %q:\n%s", want, out)
		}
	}
	q35 := MustVirsh(t, h.URI(), "domcapabilities", "--virttype", "qemu", "--machine", "q35")
	if !strings.Contains(q35, "<machine>pc-q35-") || !strings.Contains(q35, "<vcpu max='288'/>") {
		t.Errorf("q35 domcapabilities:\n%s", q35)
	}
	r := Virsh(t, h.URI(), "domcapabilities", "--virttype", "qemu", "--machine", "nosuch")
	if r.Err == nil || !strings.Contains(r.Stderr, "the machine 'nosuch' is not supported by emulator") {
		t.Errorf("unknown machine:\n%s", r)
	}
}

// TestLimitsWithRealClients: max_clients turns a further client away while
// the daemon keeps serving the ones it has, and admits clients again once
// they leave; the unix sockets get the configured permissions.
func TestLimitsWithRealClients(t *testing.T) {
	deps.Require(t, "virsh", "/usr/bin/python3")
	t.Parallel()
	h := StartHost(t, HostOptions{Extra: "max_clients = 3\nunix_sock_rw_perms = \"0700\"\nunix_sock_ro_perms = \"0777\"\n"})
	// Three clients hold connections open.
	holder := exec.Command("/usr/bin/python3", "-c", `
import sys, time, libvirt
cs = [libvirt.open(sys.argv[1]) for _ in range(3)]
print("open", flush=True)
time.sleep(30)
`, h.URI())
	stdout, _ := holder.StdoutPipe()
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
	buf := make([]byte, 5)
	if _, err := io.ReadFull(stdout, buf); err != nil || string(buf) != "open\n" {
		t.Fatalf("holder did not connect: %q %v", buf, err)
	}
	if r := Virsh(t, h.URI(), "hostname"); r.Err == nil {
		t.Errorf("a fourth client got in despite max_clients = 3:\n%s", r)
	}
	holder.Process.Kill()
	holder.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for Virsh(t, h.URI(), "hostname").Err != nil {
		if time.Now().After(deadline) {
			t.Fatal("clients refused after the others left")
		}
		time.Sleep(200 * time.Millisecond)
	}
	for sock, want := range map[string]os.FileMode{"libvirt-sock": 0o700, "libvirt-sock-ro": 0o777} {
		fi, err := os.Stat(filepath.Join(h.SockDir, sock))
		if err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v (%v), want %v", sock, fi.Mode().Perm(), err, want)
		}
	}
}
