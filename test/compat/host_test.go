// Package compat_test holds govirtd's end-to-end tests: the real daemon
// binary, driven by real virsh and python3-libvirt (Debian's), each test on
// its own 127.0.0.x address with its own sockets and state.
package compat_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/govirtd/govirtd/test/deps"
)

// daemonBin is the govirtd binary built once for the whole run.
var daemonBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "govirtd-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	daemonBin = filepath.Join(dir, "govirtd")
	build := exec.Command("go", "build", "-o", daemonBin, "github.com/govirtd/govirtd/cmd/govirtd")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build govirtd:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// addrSeq hands each host its own loopback address. The third octet comes
// from the pid so that test binaries running in parallel do not collide.
var addrSeq atomic.Uint32

func nextAddr() string {
	n := addrSeq.Add(1)
	return fmt.Sprintf("127.%d.%d.%d", 100+os.Getpid()%100, n/250, 2+n%250)
}

// freePort asks the kernel for a free TCP port on addr.
func freePort(t *testing.T, addr string) int {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		t.Fatalf("find a free port on %s: %v", addr, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Host is one govirtd "host": its own config, state dir, socket dir,
// loopback address, host UUID and hostname.
type Host struct {
	Name    string
	Addr    string
	Port    int
	TLSPort int // the TLS listener's port when HostOptions.TLS is set
	UUID    string
	Dir     string
	SockDir string
	Config  string
	LogPath string
	// NetNS is the network namespace the daemon runs in (HostOptions.NetNS).
	NetNS   string
	cmd     *exec.Cmd
	exited  chan error
	cleanup bool
	t       *testing.T
}

// HostOptions tweak a host's configuration.
type HostOptions struct {
	Name  string // hostname; default "host-<n>"
	Extra string // appended to the config file
	// QemuConf is appended to the host's qemu.conf, which always sets the
	// migration address to the host's own loopback address.
	QemuConf string
	// TLS sets listen_tls = 1 with tls_port a free port (Host.TLSPort);
	// the credentials (ca_file, cert_file, key_file) go in Extra.
	TLS bool
	// NetNS runs the daemon, and so its networks, dnsmasq and QEMU, in a
	// network namespace of its own (Host.NetNS), made for the test and
	// removed when it ends, with only lo up: nothing it does reaches the
	// host's network. Clients use Host.UnixURI (unix sockets work across
	// namespaces); the TCP listener is only reachable from inside (other
	// daemons in the namespace, see ShareNetNS). Without it, a host
	// never defines the default network (network_default = 0), since it
	// shares the host's network.
	NetNS bool
	// ShareNetNS runs the daemon in another host's network namespace
	// (one started with NetNS), so the two can migrate guests between
	// them; it does not define the default network either.
	ShareNetNS *Host
}

// StartHost starts a govirtd host and stops it when the test ends, whether
// it passed or not.
func StartHost(t *testing.T, o HostOptions) *Host {
	t.Helper()
	h := NewHost(t, o)
	h.Start()
	return h
}

// NewHost prepares a host's files without starting it.
func NewHost(t *testing.T, o HostOptions) *Host {
	t.Helper()
	n := addrSeq.Load() + 1
	h := &Host{t: t, Name: o.Name, Addr: nextAddr()}
	if h.Name == "" {
		h.Name = fmt.Sprintf("host-%d", n)
	}
	h.Port = freePort(t, h.Addr)
	tlsConf := "listen_tls = 0"
	if o.TLS {
		h.TLSPort = freePort(t, h.Addr)
		tlsConf = fmt.Sprintf("listen_tls = 1\ntls_port = \"%d\"", h.TLSPort)
	}
	h.UUID = fmt.Sprintf("%08x-1111-4222-8333-%012x", os.Getpid(), n)
	// Unix socket paths are limited to 108 bytes: keep the directory short.
	dir, err := os.MkdirTemp("", "gvd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !t.Failed() {
			os.RemoveAll(dir)
		} else {
			t.Logf("host %s files kept in %s", h.Name, dir)
		}
	})
	h.Dir = dir
	netConf := "network_default = 0"
	if o.NetNS {
		h.NetNS = makeNetNS(t, fmt.Sprintf("gvd-%d-%d", os.Getpid(), n))
		netConf = ""
	}
	if o.ShareNetNS != nil {
		h.NetNS = o.ShareNetNS.NetNS
	}
	// QEMU processes run in sessions of their own and outlive the daemon
	// (by design): kill every one this host started. Their command lines
	// name files under the host's directory. Registered first, so it runs
	// after the daemon is stopped.
	t.Cleanup(func() { killProcessesUnder(dir) })
	h.SockDir = filepath.Join(dir, "run")
	h.Config = filepath.Join(dir, "govirtd.conf")
	h.LogPath = filepath.Join(dir, "daemon.log")
	qemuConf := filepath.Join(dir, "qemu.conf")
	// Displays listen on the host's own address, with a port range of
	// its own so that hosts starting guests at the same time never race
	// for a port.
	display := 5900 + int(n%200)*16
	qc := fmt.Sprintf("migration_address = %q\nmigration_host = %q\nvnc_listen = %q\nspice_listen = %q\nremote_display_port_min = %d\nremote_display_port_max = %d\n%s\n",
		h.Addr, h.Addr, h.Addr, h.Addr, display, display+15, o.QemuConf)
	if err := os.WriteFile(qemuConf, []byte(qc), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`# govirtd test host %s
listen_tcp = 1
%s
auth_tcp = "none"
listen_addr = "%s"
tcp_port = "%d"
unix_sock_dir = "%s"
state_dir = "%s"
hostname = "%s"
host_uuid = "%s"
log_level = 2
log_rpc_calls = 1
qemu_config = "%s"
%s
%s
`, h.Name, tlsConf, h.Addr, h.Port, h.SockDir, filepath.Join(dir, "state"), h.Name, h.UUID, qemuConf, netConf, o.Extra)
	if err := os.WriteFile(h.Config, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return h
}

// Start runs the daemon and waits until it accepts connections.
func (h *Host) Start() {
	t := h.t
	t.Helper()
	logf, err := os.OpenFile(h.LogPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	h.cmd = exec.Command(daemonBin, "-f", h.Config, "--listen")
	if h.NetNS != "" {
		// ip netns exec execs the daemon (same pid) with a /sys of the
		// namespace, where the daemon reads its devices' counters.
		h.cmd = exec.Command(deps.Command(t, "ip"), "netns", "exec", h.NetNS, daemonBin, "-f", h.Config, "--listen")
	}
	h.cmd.Stdout, h.cmd.Stderr = logf, logf
	// Its own process group, so a stop reaches anything it started.
	h.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h.exited = make(chan error, 1)
	go func() { h.exited <- h.cmd.Wait(); logf.Close() }()
	if !h.cleanup {
		h.cleanup = true
		t.Cleanup(func() {
			h.Stop()
			if t.Failed() {
				h.DumpLog()
			}
		})
	}
	deadline := time.Now().Add(20 * time.Second)
	network, addr := "tcp", h.TCPAddr()
	if h.NetNS != "" {
		network, addr = "unix", filepath.Join(h.SockDir, "libvirt-sock")
	}
	for {
		c, err := net.DialTimeout(network, addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		select {
		case err := <-h.exited:
			h.exited <- err
			h.DumpLog()
			t.Fatalf("govirtd %s exited during start-up: %v", h.Name, err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			h.DumpLog()
			t.Fatalf("govirtd %s did not listen on %s within 20 s", h.Name, addr)
		}
	}
}

// Stop terminates the daemon (SIGTERM, then SIGKILL) and waits for it.
func (h *Host) Stop() {
	if h.cmd == nil || h.cmd.Process == nil {
		return
	}
	select {
	case err := <-h.exited:
		h.exited <- err
		return
	default:
	}
	syscall.Kill(-h.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case err := <-h.exited:
		h.exited <- err
	case <-time.After(10 * time.Second):
		syscall.Kill(-h.cmd.Process.Pid, syscall.SIGKILL)
		err := <-h.exited
		h.exited <- err
	}
}

// Kill9 kills the daemon the way a crash would: no clean-up at all.
func (h *Host) Kill9() {
	h.t.Helper()
	syscall.Kill(h.cmd.Process.Pid, syscall.SIGKILL)
	<-h.exited
	h.exited <- nil
}

// Alive reports whether the daemon process still runs.
func (h *Host) Alive() bool {
	if h.cmd == nil {
		return false
	}
	select {
	case err := <-h.exited:
		h.exited <- err
		return false
	default:
		return true
	}
}

// WaitExit waits up to d for the daemon to exit and reports whether it
// did. A daemon that has just died can look alive for a moment (the
// process is gone, cmd.Wait has not yet returned); this is for a test that
// knows it will die.
func (h *Host) WaitExit(d time.Duration) bool {
	if h.cmd == nil {
		return true
	}
	select {
	case err := <-h.exited:
		h.exited <- err
		return true
	case <-time.After(d):
		return false
	}
}

// RemoveFaults drops fault_injection from the host's configuration, for
// the next start.
func (h *Host) RemoveFaults() {
	h.t.Helper()
	data, err := os.ReadFile(h.Config)
	if err != nil {
		h.t.Fatal(err)
	}
	var keep []string
	for _, l := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "fault_injection") {
			keep = append(keep, l)
		}
	}
	if err := os.WriteFile(h.Config, []byte(strings.Join(keep, "\n")), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

// Restart starts the daemon again with the same configuration and state.
func (h *Host) Restart() {
	h.t.Helper()
	h.Stop()
	h.cmd = nil
	h.Start()
}

// makeNetNS creates a named network namespace with lo up and removes it
// when the test ends, after killing whatever still runs in it (dnsmasq,
// QEMU: all started by this test's daemon). Registered before the host's
// other clean-ups, so it runs after them.
func makeNetNS(t *testing.T, name string) string {
	t.Helper()
	ip := deps.Command(t, "ip")
	if out, err := exec.Command(ip, "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v %s", name, err, out)
	}
	t.Cleanup(func() {
		for i := 0; i < 50; i++ {
			out, _ := exec.Command(ip, "netns", "pids", name).Output()
			pids := strings.Fields(string(out))
			if len(pids) == 0 {
				break
			}
			for _, p := range pids {
				if pid, err := strconv.Atoi(p); err == nil && pid > 1 && pid != os.Getpid() {
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
		if out, err := exec.Command(ip, "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v %s", name, err, out)
		}
	})
	if out, err := exec.Command(ip, "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("bring up lo in %s: %v %s", name, err, out)
	}
	return name
}

// killProcessesUnder kills every process whose command line mentions dir.
func killProcessesUnder(dir string) {
	for _, pid := range pidsMatching(regexp.QuoteMeta(dir)) {
		if pid > 1 && pid != os.Getpid() {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// pidsMatching lists the processes whose command line (arguments joined by
// spaces, as pgrep -f sees it) matches the regular expression pattern.
// Read from /proc rather than by running pgrep, so that a missing tool can
// never make a clean-up check find nothing.
func pidsMatching(pattern string) []int {
	re := regexp.MustCompile(pattern)
	ents, err := os.ReadDir("/proc")
	if err != nil {
		panic(fmt.Sprintf("read /proc: %v", err))
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue // gone, or a zombie/kernel thread
		}
		if re.Match(bytes.ReplaceAll(bytes.TrimRight(b, "\x00"), []byte{0}, []byte{' '})) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// QEMUPids lists the QEMU processes this host started that still run.
func (h *Host) QEMUPids() []string {
	var out []string
	for _, pid := range pidsMatching("qemu-system.*" + regexp.QuoteMeta(h.Dir)) {
		out = append(out, strconv.Itoa(pid))
	}
	return out
}

// DumpLog copies the daemon's log into the test output.
func (h *Host) DumpLog() {
	data, err := os.ReadFile(h.LogPath)
	if err != nil {
		return
	}
	h.t.Logf("---- govirtd %s log ----\n%s", h.Name, data)
}

// TCPAddr is host:port of the TCP listener.
func (h *Host) TCPAddr() string { return net.JoinHostPort(h.Addr, fmt.Sprint(h.Port)) }

// URI is the qemu+tcp URI of this host.
func (h *Host) URI() string { return fmt.Sprintf("qemu+tcp://%s/system", h.TCPAddr()) }

// UnixURI is the qemu+unix URI of the read-write socket.
func (h *Host) UnixURI() string {
	return "qemu+unix:///system?socket=" + filepath.Join(h.SockDir, "libvirt-sock")
}

// ROURI is the qemu+unix URI of the read-only socket.
func (h *Host) ROURI() string {
	return "qemu+unix:///system?socket=" + filepath.Join(h.SockDir, "libvirt-sock-ro")
}

// Result is what a client command printed.
type Result struct {
	Stdout, Stderr string
	Err            error
}

func (r Result) String() string {
	return fmt.Sprintf("err=%v\nstdout:\n%s\nstderr:\n%s", r.Err, r.Stdout, r.Stderr)
}

// run runs a client command with a timeout.
func run(t *testing.T, timeout time.Duration, name string, args ...string) Result {
	t.Helper()
	if _, listed := deps.PackageOf(name); listed {
		deps.Require(t, name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s timed out after %v: %w", name, timeout, ctx.Err())
	}
	return Result{Stdout: out.String(), Stderr: errb.String(), Err: err}
}

// Virsh runs virsh against uri.
func Virsh(t *testing.T, uri string, args ...string) Result {
	t.Helper()
	return run(t, 30*time.Second, "virsh", append([]string{"-q", "-c", uri}, args...)...)
}

// MustVirsh runs virsh and fails the test if it fails.
func MustVirsh(t *testing.T, uri string, args ...string) string {
	t.Helper()
	r := Virsh(t, uri, args...)
	if r.Err != nil {
		t.Fatalf("virsh %s: %s", strings.Join(args, " "), r)
	}
	return r.Stdout
}

// Python runs a python3-libvirt script with Debian's interpreter (the first
// python3 on PATH may be another install without the libvirt module).
func Python(t *testing.T, script string, args ...string) Result {
	t.Helper()
	deps.Require(t, "/usr/lib/python3/dist-packages/libvirt.py")
	return run(t, 60*time.Second, "/usr/bin/python3", append([]string{"-c", script}, args...)...)
}

// lines splits output into trimmed non-empty lines.
func lines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, l)
		}
	}
	return out
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
