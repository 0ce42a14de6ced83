package qemu

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"syscall"

	libvirt "github.com/digitalocean/go-libvirt"
	"golang.org/x/sys/unix"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver"
)

var _ driver.DomainConsoles = (*Driver)(nil)

// consoleSessions are the open console sessions, by pty path: one per
// character device, as libvirt's virChrdevs keeps them, so that two
// clients never type into one console unknowingly.
type consoleSessions struct {
	mu     sync.Mutex
	byPath map[string]*consoleSession
}

// consoleSession is one client's connection to a pty.
type consoleSession struct {
	f        *os.File
	owner    *consoleSessions
	path     string
	closeErr error
	once     sync.Once
}

func (s *consoleSession) Read(p []byte) (int, error) {
	n, err := s.f.Read(p)
	if err != nil && n == 0 {
		// The pty's other side went away (EIO once QEMU exits), or the
		// session was taken over and closed: the end of the console.
		return 0, io.EOF
	}
	return n, nil
}

func (s *consoleSession) Write(p []byte) (int, error) { return s.f.Write(p) }

// Close ends the session and frees the device for the next one.
func (s *consoleSession) Close() error {
	s.once.Do(func() {
		s.owner.mu.Lock()
		if s.owner.byPath[s.path] == s {
			delete(s.owner.byPath, s.path)
		}
		s.owner.mu.Unlock()
		s.closeErr = s.f.Close()
	})
	return s.closeErr
}

// OpenConsole implements driver.DomainConsoles, as qemuDomainOpenConsole:
// the device is found by alias (or is the first console, else the first
// serial port) and must be a pty.
func (d *Driver) OpenConsole(ctx context.Context, ref libvirt.Domain, devName string, flags libvirt.DomainConsoleFlags) (io.ReadWriteCloser, error) {
	if flags&^(libvirt.DomainConsoleForce|libvirt.DomainConsoleSafe) != 0 {
		return nil, compat.Errorf(libvirt.ErrInvalidArg, compat.FromQEMU, "unsupported flags (0x%x) in function qemuDomainOpenConsole", uint32(flags))
	}
	dom, err := d.get(ref)
	if err != nil {
		return nil, err
	}
	if !dom.active() {
		return nil, errNotRunning()
	}
	name, src := findConsoleDevice(dom.current(), devName)
	if src == nil {
		if devName == "" {
			devName = "console"
		}
		return nil, compat.Errorf(libvirt.ErrInternalError, compat.FromQEMU, "cannot find character device %s", devName)
	}
	if src.Pty == nil || src.Pty.Path == "" {
		return nil, compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "character device %s is not using a PTY", name)
	}
	return d.consoles.open(src.Pty.Path, flags&libvirt.DomainConsoleForce != 0)
}

func (c *consoleSessions) open(path string, force bool) (io.ReadWriteCloser, error) {
	c.mu.Lock()
	old := c.byPath[path]
	if old != nil && !force {
		c.mu.Unlock()
		return nil, compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "Active console session exists for this domain")
	}
	c.mu.Unlock()
	if old != nil {
		// Forced: the old client's stream ends.
		old.Close()
	}
	f, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, compat.Errorf(libvirt.ErrSystemError, compat.FromQEMU, "Unable to open tty %s: %v", path, err)
	}
	// Raw mode, as virFDStreamOpenPTY sets it: no echo and no line editing
	// between the client and the guest.
	if err := makeRaw(f); err != nil {
		f.Close()
		return nil, compat.Errorf(libvirt.ErrSystemError, compat.FromQEMU, "unable to set tty %s attributes: %v", path, err)
	}
	s := &consoleSession{f: f, owner: c, path: path}
	c.mu.Lock()
	defer c.mu.Unlock()
	if other := c.byPath[path]; other != nil {
		// Another client opened it meanwhile.
		f.Close()
		return nil, compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "Active console session exists for this domain")
	}
	if c.byPath == nil {
		c.byPath = map[string]*consoleSession{}
	}
	c.byPath[path] = s
	return s, nil
}

func makeRaw(f *os.File) error {
	raw, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var terr error
	cerr := raw.Control(func(fd uintptr) {
		t, err := unix.IoctlGetTermios(int(fd), unix.TCGETS)
		if err != nil {
			terr = err
			return
		}
		// cfmakeraw
		t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
		t.Oflag &^= unix.OPOST
		t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		t.Cflag &^= unix.CSIZE | unix.PARENB
		t.Cflag |= unix.CS8
		t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
		terr = unix.IoctlSetTermios(int(fd), unix.TCSETS, t)
	})
	return errors.Join(cerr, terr)
}

// findConsoleDevice finds a character device by alias among the consoles,
// serial ports, parallel ports and channels, or, for "", the first console
// (else the first serial port). It returns the device's alias and source.
func findConsoleDevice(def *libvirtxml.Domain, devName string) (string, *libvirtxml.DomainChardevSource) {
	if def == nil || def.Devices == nil {
		return "", nil
	}
	dv := def.Devices
	alias := func(a *libvirtxml.DomainAlias) string {
		if a == nil {
			return ""
		}
		return a.Name
	}
	if devName == "" {
		if len(dv.Consoles) > 0 {
			return alias(dv.Consoles[0].Alias), dv.Consoles[0].Source
		}
		if len(dv.Serials) > 0 {
			return alias(dv.Serials[0].Alias), dv.Serials[0].Source
		}
		return "", nil
	}
	for _, c := range dv.Consoles {
		if alias(c.Alias) == devName {
			return devName, c.Source
		}
	}
	for _, s := range dv.Serials {
		if alias(s.Alias) == devName {
			return devName, s.Source
		}
	}
	for _, p := range dv.Parallels {
		if alias(p.Alias) == devName {
			return devName, p.Source
		}
	}
	for _, c := range dv.Channels {
		if alias(c.Alias) == devName {
			return devName, c.Source
		}
	}
	return "", nil
}
