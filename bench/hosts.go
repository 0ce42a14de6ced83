package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"
)

// host is one daemon under test: govirtd or a namespaced libvirtd, each on
// its own loopback address, port, state and hostname.
type host struct {
	kind string // "govirtd" or "libvirtd"
	name string
	addr string
	port int
	uuid string
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
	// pprof is govirtd's debug_pprof_addr (loopback), for the profiles the
	// report cites; empty for libvirtd.
	pprof string
}

func (h *host) uri() string { return fmt.Sprintf("qemu+tcp://%s:%d/system", h.addr, h.port) }

func (h *host) pid() int { return h.cmd.Process.Pid }

// dial opens a go-libvirt connection. Every call in the benchmark goes
// through this, so both daemons see exactly the same client.
func (h *host) dial() (*libvirt.Libvirt, error) {
	c, err := net.DialTimeout("tcp", net.JoinHostPort(h.addr, strconv.Itoa(h.port)), 5*time.Second)
	if err != nil {
		return nil, err
	}
	l := libvirt.NewWithDialer(dialers.NewAlreadyConnected(c))
	if err := l.ConnectToURI(libvirt.QEMUSystem); err != nil {
		c.Close()
		return nil, err
	}
	return l, nil
}

// freePort asks the kernel for a free TCP port on addr.
func freePort(addr string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func startGovirtd(bin, root, name, addr string, n int) (*host, error) {
	h := &host{kind: "govirtd", name: name, addr: addr, uuid: fmt.Sprintf("6f76a1d0-0000-4000-8000-%012d", n)}
	h.dir = filepath.Join(root, name)
	if err := os.MkdirAll(h.dir, 0o755); err != nil {
		return nil, err
	}
	var err error
	if h.port, err = freePort(addr); err != nil {
		return nil, err
	}
	pport, err := freePort(addr)
	if err != nil {
		return nil, err
	}
	h.pprof = net.JoinHostPort(addr, strconv.Itoa(pport))
	qconf := filepath.Join(h.dir, "qemu.conf")
	if err := os.WriteFile(qconf, []byte(fmt.Sprintf("migration_address = %q\nmigration_host = %q\n", addr, addr)), 0o644); err != nil {
		return nil, err
	}
	// log_level 3: warnings only, so logging does not weigh on the RPC figures
	// (libvirtd below logs at the same level). network_default = 0: the
	// hosts share this machine's network, where no default network
	// (virbr0) is made.
	conf := fmt.Sprintf(`listen_tcp = 1
listen_tls = 0
auth_tcp = "none"
listen_addr = %q
tcp_port = "%d"
unix_sock_dir = %q
state_dir = %q
hostname = %q
host_uuid = %q
log_level = 3
qemu_config = %q
debug_pprof_addr = %q
network_default = 0
`, addr, h.port, filepath.Join(h.dir, "run"), filepath.Join(h.dir, "state"), name, h.uuid, qconf, h.pprof)
	cf := filepath.Join(h.dir, "govirtd.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	h.cmd = exec.Command(bin, "-f", cf, "--listen")
	return h, h.start()
}

func startLibvirtd(script, root, name, addr string, n int) (*host, error) {
	h := &host{kind: "libvirtd", name: name, addr: addr, uuid: fmt.Sprintf("1ab71b7d-0000-4000-8000-%012d", n)}
	h.dir = filepath.Join(root, name)
	var err error
	if h.port, err = freePort(addr); err != nil {
		return nil, err
	}
	pmin := 49700 + 100*n
	h.cmd = exec.Command(script, h.dir, addr, strconv.Itoa(h.port), name, h.uuid, strconv.Itoa(pmin), strconv.Itoa(pmin+49))
	if err := h.start(); err != nil {
		return nil, err
	}
	// host.sh execs unshare, which execs bash, which execs libvirtd: the
	// pid we started is libvirtd's own, so /proc figures are the daemon's.
	comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", h.pid()))
	if strings.TrimSpace(string(comm)) != "libvirtd" {
		h.stop()
		return nil, fmt.Errorf("pid %d is %q, not libvirtd", h.pid(), strings.TrimSpace(string(comm)))
	}
	return h, nil
}

// start runs the daemon with its output in DIR/daemon.log and waits (at
// most 30 s) until a full libvirt handshake succeeds.
func (h *host) start() error {
	if err := os.MkdirAll(h.dir, 0o755); err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(h.dir, "daemon.log"))
	if err != nil {
		return err
	}
	h.cmd.Stdout, h.cmd.Stderr = logf, logf
	if err := h.cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	h.done = make(chan struct{})
	go func() { h.cmd.Wait(); logf.Close(); close(h.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-h.done:
			log, _ := os.ReadFile(filepath.Join(h.dir, "daemon.log"))
			return fmt.Errorf("%s %s exited during start-up: %s", h.kind, h.name, tail(log, 600))
		case <-time.After(100 * time.Millisecond):
		}
		if l, err := h.dial(); err == nil {
			l.Disconnect()
			return nil
		}
	}
	h.stop()
	return fmt.Errorf("%s %s did not answer on %s within 30 s", h.kind, h.name, h.uri())
}

// stop sends SIGTERM, then SIGKILL after 10 s, and waits for the exit.
func (h *host) stop() {
	if h == nil || h.cmd == nil || h.cmd.Process == nil {
		return
	}
	h.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-h.done:
	case <-time.After(10 * time.Second):
		h.cmd.Process.Kill()
		<-h.done
	}
}

func tail(b []byte, n int) string {
	b = bytes.TrimSpace(b)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// procCPU returns a process's user+system CPU time, from /proc/PID/stat.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces: fields are counted after its ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("bad /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	// USER_HZ is 100 on every Linux ABI Go supports on amd64/arm64.
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}

// procRSS returns VmRSS in bytes.
func procRSS(pid int) (float64, error) { return procStatusKB(pid, "VmRSS") }

// procRSSAnon returns RssAnon in bytes: the resident memory that is the
// process's own (heap, stacks), without the executable's and libraries'
// file pages, which count in VmRSS as soon as code runs once but belong to
// the page cache.
func procRSSAnon(pid int) (float64, error) { return procStatusKB(pid, "RssAnon") }

// procStatusKB reads one "Name:   N kB" line of /proc/PID/status, in bytes.
func procStatusKB(pid int, name string) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			f := strings.Fields(v)
			kb, err := strconv.ParseFloat(f[0], 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", name, pid)
}

// killProcessesUnder kills every process whose command line mentions dir:
// the QEMUs both daemons started (their serial logs live under dir) run in
// sessions of their own and outlive the daemons by design.
func killProcessesUnder(dir string) {
	ents, _ := os.ReadDir("/proc")
	self := os.Getpid()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		cl, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(cl, []byte(dir)) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}
