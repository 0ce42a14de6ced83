package qemucmd

import (
	"bufio"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/test/deps"
)

// startQEMU runs the built command the way the driver will: monitor
// socket inherited as a listening fd, chardev files passed as fd sets.
// It returns a QMP client already past capabilities negotiation.
func startQEMU(t *testing.T, dom *libvirtxml.Domain) (*bufio.Reader, net.Conn) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "master-key.aes"), make([]byte, 32), 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "monitor.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	lf, err := ln.File()
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()

	cmd, err := Build(dom, Options{Emulator: deps.Command(t, "qemu-system-x86_64"), DomainDir: dir, MonitorFD: 3})
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	extra, closeFiles, err := cmd.ExtraFiles(map[int]*os.File{3: lf})
	if err != nil {
		t.Fatal(err)
	}
	defer closeFiles()
	proc := exec.Command(cmd.Path, cmd.Args...)
	proc.Env = cmd.Env
	proc.ExtraFiles = extra
	logf, err := os.Create(filepath.Join(dir, "qemu.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	proc.Stdout, proc.Stderr = logf, logf
	if err := proc.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- proc.Wait() }()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			proc.Process.Kill()
			<-exited
		}
	})

	conn, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(conn)
	greeting, err := r.ReadString('\n')
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "qemu.log"))
		t.Fatalf("no QMP greeting (%v); QEMU said:\n%s\nargs: %s", err, log, cmd)
	}
	var g struct {
		QMP json.RawMessage `json:"QMP"`
	}
	if json.Unmarshal([]byte(greeting), &g) != nil || g.QMP == nil {
		t.Fatalf("unexpected greeting %q", greeting)
	}
	qmp(t, r, conn, `{"execute":"qmp_capabilities"}`)
	return r, conn
}

func qmp(t *testing.T, r *bufio.Reader, conn net.Conn, req string) json.RawMessage {
	t.Helper()
	if _, err := conn.Write([]byte(req + "\n")); err != nil {
		t.Fatal(err)
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("%s: %v", req, err)
		}
		var resp struct {
			Return json.RawMessage `json:"return"`
			Error  json.RawMessage `json:"error"`
			Event  string          `json:"event"`
		}
		if err := json.Unmarshal([]byte(line), &resp); err != nil {
			t.Fatalf("%s: bad reply %q", req, line)
		}
		switch {
		case resp.Event != "":
			continue
		case resp.Error != nil:
			t.Fatalf("%s: %s", req, resp.Error)
		}
		return resp.Return
	}
}

func TestSmokeQEMU(t *testing.T) {
	if testing.Short() {
		t.Skip("starts QEMU")
	}
	cases := map[string]func(t *testing.T) *libvirtxml.Domain{
		"demo": func(t *testing.T) *libvirtxml.Domain { return loadDomain(t, "demo") },
		"q35":  func(t *testing.T) *libvirtxml.Domain { return loadDomain(t, "q35") },
		"disk": diskDomain,
	}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			dom := mk(t)
			r, conn := startQEMU(t, dom)
			var st struct {
				Status string `json:"status"`
			}
			if err := json.Unmarshal(qmp(t, r, conn, `{"execute":"query-status"}`), &st); err != nil {
				t.Fatal(err)
			}
			if st.Status != "prelaunch" {
				t.Fatalf("status %q, want prelaunch", st.Status)
			}
			qmp(t, r, conn, `{"execute":"quit"}`)
		})
	}
}

// diskDomain is kernel-pty-tablet without the (absent) kernel, plus a
// qcow2 virtio disk, an empty IDE cdrom and a serial log file, so that
// QEMU itself checks the -blockdev, -add-fd and device syntax.
func diskDomain(t *testing.T) *libvirtxml.Domain {
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.qcow2")
	if out, err := exec.Command(deps.Command(t, "qemu-img"), "create", "-f", "qcow2", img, "16M").CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v %s", err, out)
	}
	dom := loadDomain(t, "kernel-pty-tablet")
	dom.OS.Kernel, dom.OS.Initrd, dom.OS.Cmdline = "", "", ""
	u := func(v uint) *uint { return &v }
	dom.Devices.Disks = []libvirtxml.DomainDisk{{
		Device:       "disk",
		Driver:       &libvirtxml.DomainDiskDriver{Name: "qemu", Type: "qcow2"},
		Source:       &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: img}},
		BackingStore: &libvirtxml.DomainDiskBackingStore{},
		Target:       &libvirtxml.DomainDiskTarget{Dev: "vda", Bus: "virtio"},
		Address: &libvirtxml.DomainAddress{PCI: &libvirtxml.DomainAddressPCI{
			Domain: u(0), Bus: u(0), Slot: u(4), Function: u(0)}},
	}, {
		Device:   "cdrom",
		Driver:   &libvirtxml.DomainDiskDriver{Name: "qemu", Type: "raw"},
		Target:   &libvirtxml.DomainDiskTarget{Dev: "hdc", Bus: "ide"},
		ReadOnly: &libvirtxml.DomainDiskReadOnly{},
		Address: &libvirtxml.DomainAddress{Drive: &libvirtxml.DomainAddressDrive{
			Controller: u(0), Bus: u(1), Target: u(0), Unit: u(0)}},
	}}
	dom.Devices.Controllers = append(dom.Devices.Controllers, libvirtxml.DomainController{Type: "ide", Index: u(0)})
	dom.Devices.Serials = append(dom.Devices.Serials, libvirtxml.DomainSerial{
		Source: &libvirtxml.DomainChardevSource{File: &libvirtxml.DomainChardevSourceFile{
			Path: filepath.Join(dir, "serial.log"), Append: "on"}},
		Target: &libvirtxml.DomainSerialTarget{Type: "isa-serial", Port: u(1)},
	})
	return dom
}
