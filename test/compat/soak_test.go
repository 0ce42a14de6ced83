package compat_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"

	"github.com/govirtd/govirtd/test/deps"
)

// TestSoak: a bounded load on loopback — hundreds of concurrent
// connections doing mixed calls (queries, define/undefine, start/destroy,
// event registrations) while a guest migrates back and forth between two
// hosts. Afterwards: no goroutine or file descriptor leak, memory back near
// its baseline, every definition intact, every guest running exactly once.
// It stops by itself (SOAK_SECONDS, default 20).
func TestSoak(t *testing.T) {
	deps.Require(t, "virsh", "qemu-system-x86_64")
	if testing.Short() {
		t.Skip("soak test skipped with -short")
	}
	dur := 20 * time.Second
	if s, err := strconv.Atoi(os.Getenv("SOAK_SECONDS")); err == nil && s > 0 {
		dur = time.Duration(s) * time.Second
	}
	pprofA, pprofB := freeLoopbackAddr(t), freeLoopbackAddr(t)
	a := StartHost(t, HostOptions{Name: "soak-a", Extra: fmt.Sprintf("debug_pprof_addr = %q\nmax_clients = 1000\n", pprofA)})
	b := StartHost(t, HostOptions{Name: "soak-b", Extra: fmt.Sprintf("debug_pprof_addr = %q\nmax_clients = 1000\n", pprofB)})

	// The migrating guest, and two guests started and destroyed in a loop.
	serial := filepath.Join(a.Dir, "mig.serial")
	defineGuest(t, a, GuestOptions{Name: "mig", Serial: serial})
	MustVirsh(t, a.URI(), "start", "mig")
	WaitTicks(t, serial, 1, 60*time.Second)
	for _, n := range []string{"cyc1", "cyc2"} {
		defineGuest(t, a, GuestOptions{Name: n, Serial: filepath.Join(a.Dir, n+".serial")})
	}
	time.Sleep(time.Second)
	base := sample(t, a, pprofA)
	t.Logf("baseline: %+v", base)

	var calls, errs, migrations, events atomic.Int64
	stop := make(chan struct{})
	time.AfterFunc(dur, func() { close(stop) })
	var wg sync.WaitGroup

	// 200 query connections, 20 define/undefine connections, 20 event
	// listeners, to host a.
	worker := func(i int, fn func(l *libvirt.Libvirt) error) {
		defer wg.Done()
		c, err := net.Dial("tcp", a.TCPAddr())
		if err != nil {
			errs.Add(1)
			return
		}
		l := libvirt.NewWithDialer(dialers.NewAlreadyConnected(c))
		if err := l.Connect(); err != nil {
			errs.Add(1)
			c.Close()
			return
		}
		defer l.Disconnect()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := fn(l); err != nil {
				errs.Add(1)
			}
			calls.Add(1)
		}
	}
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go worker(i, func(l *libvirt.Libvirt) error {
			if _, _, err := l.ConnectListAllDomains(1, 3); err != nil {
				return err
			}
			d, err := l.DomainLookupByName("cyc1")
			if err != nil {
				return err
			}
			_, err = l.DomainGetXMLDesc(d, 0)
			return err
		})
	}
	for i := 0; i < 20; i++ {
		name := fmt.Sprintf("tmp%d", i)
		xml := fmt.Sprintf("<domain type='qemu'><name>%s</name><memory unit='MiB'>64</memory><os><type arch='x86_64' machine='pc'>hvm</type></os></domain>", name)
		wg.Add(1)
		go worker(i, func(l *libvirt.Libvirt) error {
			d, err := l.DomainDefineXML(xml)
			if err != nil {
				return err
			}
			return l.DomainUndefine(d)
		})
	}
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", a.TCPAddr())
			if err != nil {
				errs.Add(1)
				return
			}
			l := libvirt.NewWithDialer(dialers.NewAlreadyConnected(c))
			if err := l.Connect(); err != nil {
				errs.Add(1)
				return
			}
			defer l.Disconnect()
			ch, err := l.LifecycleEvents(t.Context())
			if err != nil {
				errs.Add(1)
				return
			}
			for {
				select {
				case <-stop:
					return
				case _, ok := <-ch:
					if !ok {
						return
					}
					events.Add(1)
				}
			}
		}()
	}
	// Start/destroy cycles.
	for _, n := range []string{"cyc1", "cyc2"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if r := Virsh(t, a.URI(), "start", n); r.Err != nil {
					errs.Add(1)
				}
				time.Sleep(500 * time.Millisecond)
				if r := Virsh(t, a.URI(), "destroy", n); r.Err != nil {
					errs.Add(1)
				}
			}
		}()
	}
	// The guest migrates back and forth.
	wg.Add(1)
	go func() {
		defer wg.Done()
		from, to := a, b
		for {
			select {
			case <-stop:
				return
			default:
			}
			if r := run(t, 2*time.Minute, "virsh", "-c", from.URI(), "migrate", "--live", "--p2p", "mig", to.URI()); r.Err != nil {
				t.Logf("migration %s -> %s: %s", from.Name, to.Name, r.Stderr)
				errs.Add(1)
			} else {
				migrations.Add(1)
				from, to = to, from
			}
		}
	}()
	wg.Wait()
	t.Logf("soak: %d calls, %d migrations, %d events, %d errors over %v with 240 connections", calls.Load(), migrations.Load(), events.Load(), errs.Load(), dur)

	// Every guest runs exactly once; every definition is intact.
	aRun, bRun := runningOn(t, a.URI(), "mig"), runningOn(t, b.URI(), "mig")
	if aRun == bRun {
		t.Errorf("migrating guest running on a=%v b=%v", aRun, bRun)
	}
	if out := MustVirsh(t, a.URI(), "list", "--all", "--name"); !strings.Contains(out, "mig") || !strings.Contains(out, "cyc1") || !strings.Contains(out, "cyc2") || strings.Contains(out, "tmp") {
		t.Errorf("definitions after the soak:\n%s", out)
	}
	for _, n := range []string{"cyc1", "cyc2"} {
		Virsh(t, a.URI(), "destroy", n)
	}
	if migrations.Load() == 0 || calls.Load() == 0 || events.Load() == 0 {
		t.Errorf("the load did not run: %d calls, %d migrations, %d events", calls.Load(), migrations.Load(), events.Load())
	}
	if errs.Load() != 0 {
		t.Errorf("%d errors under load", errs.Load())
	}

	// Leaks: give the daemon a moment to settle (it returns idle memory to
	// the system every few seconds), then compare.
	time.Sleep(8 * time.Second)
	after := sample(t, a, pprofA)
	t.Logf("after: %+v", after)
	if after.goroutines > base.goroutines+20 {
		t.Errorf("goroutines %d -> %d: leak", base.goroutines, after.goroutines)
	}
	if after.fds > base.fds+10 {
		t.Errorf("file descriptors %d -> %d: leak", base.fds, after.fds)
	}
	if after.rssKiB > base.rssKiB*2+32*1024 {
		t.Errorf("RSS %d KiB -> %d KiB: not back near the baseline", base.rssKiB, after.rssKiB)
	}
}

type procSample struct {
	goroutines, fds int
	rssKiB          int
}

// sample reads the daemon's goroutines (from its pprof endpoint), open
// file descriptors and RSS.
func sample(t *testing.T, h *Host, pprofAddr string) procSample {
	t.Helper()
	var s procSample
	resp, err := http.Get("http://" + pprofAddr + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatalf("pprof: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Sscanf(string(body), "goroutine profile: total %d", &s.goroutines)
	pid := h.cmd.Process.Pid
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	s.fds = len(fds)
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			fmt.Sscanf(strings.TrimPrefix(l, "VmRSS:"), "%d", &s.rssKiB)
		}
	}
	return s
}

func freeLoopbackAddr(t *testing.T) string {
	addr := nextAddr()
	return net.JoinHostPort(addr, strconv.Itoa(freePort(t, addr)))
}
