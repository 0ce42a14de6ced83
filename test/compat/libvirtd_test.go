package compat_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/govirtd/govirtd/test/deps"
)

// LibvirtdHost is a real libvirtd 9.0 "host" beside govirtd on one
// machine: test/libvirtd/host.sh runs it in its own mount and UTS namespace
// with its own config, state, hostname, host UUID, address and ports.
type LibvirtdHost struct {
	Name, Addr, UUID, Dir string
	Port                  int
	cmd                   *exec.Cmd
	exited                chan error
	t                     *testing.T
}

// requireLibvirtd fails a test where a real libvirtd cannot run: the
// README's test command installs it, and runs as root.
func requireLibvirtd(t *testing.T) {
	t.Helper()
	deps.Require(t, "virsh", "qemu-system-x86_64", "unshare", "mount", "hostname",
		"/usr/sbin/libvirtd", "/etc/libvirt/libvirtd.conf",
		"/usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so")
	if os.Geteuid() != 0 {
		t.Fatal("a namespaced libvirtd host needs root (its own mount namespace over /run/libvirt, /etc/libvirt, ...): run the tests as root")
	}
}

// StartLibvirtd starts a libvirtd host and stops it, and every guest it
// runs, when the test ends.
func StartLibvirtd(t *testing.T, name string) *LibvirtdHost {
	t.Helper()
	return StartLibvirtdWith(t, name, "")
}

// StartLibvirtdWith starts a libvirtd host whose qemu.conf has qemuConf
// added.
func StartLibvirtdWith(t *testing.T, name, qemuConf string) *LibvirtdHost {
	t.Helper()
	requireLibvirtd(t)
	n := addrSeq.Load() + 1
	h := &LibvirtdHost{t: t, Name: name, Addr: nextAddr(), UUID: fmt.Sprintf("%08x-2222-4333-8444-%012x", os.Getpid(), n)}
	h.Port = freePort(t, h.Addr)
	dir, err := os.MkdirTemp("", "lvd")
	if err != nil {
		t.Fatal(err)
	}
	h.Dir = dir
	root, _ := filepath.Abs("../..")
	h.cmd = exec.Command(filepath.Join(root, "test/libvirtd/host.sh"), dir, h.Addr, fmt.Sprint(h.Port), name, h.UUID, "49152", "49215")
	logf, err := os.Create(filepath.Join(dir, "host.out"))
	if err != nil {
		t.Fatal(err)
	}
	h.cmd.Stdout, h.cmd.Stderr = logf, logf
	h.cmd.Env = append(os.Environ(), "LIBVIRTD_QEMU_CONF="+qemuConf)
	h.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h.exited = make(chan error, 1)
	go func() { h.exited <- h.cmd.Wait(); logf.Close() }()
	t.Cleanup(func() {
		// Guests first: libvirtd daemonizes its QEMUs.
		out := Virsh(t, h.URI(), "list", "--name")
		for _, d := range lines(out.Stdout) {
			Virsh(t, h.URI(), "destroy", d)
		}
		syscall.Kill(-h.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-h.exited:
		case <-time.After(15 * time.Second):
			syscall.Kill(-h.cmd.Process.Pid, syscall.SIGKILL)
			<-h.exited
		}
		if t.Failed() {
			data, _ := os.ReadFile(filepath.Join(dir, "log", "libvirtd.log"))
			t.Logf("---- libvirtd %s log (tail) ----\n%s", name, tail(string(data), 40))
			t.Logf("libvirtd host %s files kept in %s", name, dir)
		} else {
			os.RemoveAll(dir)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(h.Addr, fmt.Sprint(h.Port)), 200*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		select {
		case err := <-h.exited:
			h.exited <- err
			data, _ := os.ReadFile(filepath.Join(dir, "host.out"))
			t.Fatalf("libvirtd host exited during start-up: %v\n%s", err, data)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("libvirtd did not listen within 30 s")
		}
	}
	return h
}

// URI is the qemu+tcp URI of the libvirtd host.
func (h *LibvirtdHost) URI() string {
	return fmt.Sprintf("qemu+tcp://%s/system", net.JoinHostPort(h.Addr, fmt.Sprint(h.Port)))
}

// running reports whether the domain runs on a host given by URI.
func runningOn(t *testing.T, uri, name string) bool {
	r := Virsh(t, uri, "domstate", name)
	return r.Err == nil && strings.HasPrefix(strings.TrimSpace(r.Stdout), "running")
}
