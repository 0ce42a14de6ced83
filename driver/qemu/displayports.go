package qemu

import (
	"fmt"
	"net"
	"sync"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
)

// portAllocator hands out display ports from qemu.conf's
// remote_display_port_min..max, like libvirt's virPortAllocator: a port
// is free when no domain of this daemon holds it and it can be bound on
// every address (so another daemon's or program's listener is skipped).
type portAllocator struct {
	mu       sync.Mutex
	min, max int
	used     map[int]bool
}

func newPortAllocator(min, max int) *portAllocator {
	return &portAllocator{min: min, max: max, used: map[int]bool{}}
}

func (a *portAllocator) acquire() (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for p := a.min; p <= a.max; p++ {
		if a.used[p] || !bindable(p) {
			continue
		}
		a.used[p] = true
		return p, nil
	}
	return 0, compat.Errorf(libvirt.ErrInternalError, compat.FromNone, "Unable to find an unused port in range 'display' (%d-%d)", a.min, a.max)
}

// claim marks a port as held, for domains found running at start-up.
func (a *portAllocator) claim(p int) {
	a.mu.Lock()
	a.used[p] = true
	a.mu.Unlock()
}

func (a *portAllocator) release(p int) {
	a.mu.Lock()
	delete(a.used, p)
	a.mu.Unlock()
}

func bindable(port int) bool {
	l, err := net.Listen("tcp4", fmt.Sprintf("0.0.0.0:%d", port))
	if err != nil {
		return false
	}
	l.Close()
	// A host without IPv6 cannot bind [::]; that says nothing about the
	// port.
	if l6, err := net.Listen("tcp6", fmt.Sprintf("[::]:%d", port)); err == nil {
		l6.Close()
	}
	return true
}

// portReservation is one start's share of the allocator: what it took is
// given back if the start fails.
type portReservation struct {
	alloc *portAllocator
	taken []int
}

func (r *portReservation) Reserve(string) (int, error) {
	p, err := r.alloc.acquire()
	if err == nil {
		r.taken = append(r.taken, p)
	}
	return p, err
}

func (r *portReservation) releaseAll() {
	for _, p := range r.taken {
		r.alloc.release(p)
	}
	r.taken = nil
}

// autoDisplayPorts lists the ports a live definition got from the
// allocator: those of autoport displays.
func autoDisplayPorts(live *libvirtxml.Domain) []int {
	if live == nil || live.Devices == nil {
		return nil
	}
	var out []int
	for _, g := range live.Devices.Graphics {
		switch {
		case g.VNC != nil && g.VNC.AutoPort == "yes" && g.VNC.Port > 0:
			out = append(out, g.VNC.Port)
		case g.Spice != nil && g.Spice.AutoPort == "yes" && g.Spice.Port > 0:
			out = append(out, g.Spice.Port)
		}
	}
	return out
}

// configListen lists the display listen addresses qemu.conf supplies.
func (d *Driver) configListen() []string {
	return []string{d.qconf.VNCListen, d.qconf.SpiceListen}
}
