package compat_test

import (
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"
)

// flowLimiter is a TCP proxy that limits every connection it forwards, in
// the direction of the forwarded data, to rate bytes per second: a link
// where each flow gets its share (a per-flow shaper, a long fat pipe whose
// window caps one TCP stream), the case parallel migration is for. The
// other direction is not limited.
type flowLimiter struct {
	ln    net.Listener
	to    string
	rate  int
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

// startFlowLimiter listens on addr ("IP:0" picks a port) and forwards to
// the same port on toHost; it stops at the end of the test.
func startFlowLimiter(t *testing.T, addr, toHost string, rate int) *flowLimiter {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	f := &flowLimiter{ln: ln, to: net.JoinHostPort(toHost, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)), rate: rate}
	f.wg.Add(1)
	go f.accept()
	t.Cleanup(f.close)
	return f
}

// Port is the port the proxy listens on, and the destination must.
func (f *flowLimiter) Port() int { return f.ln.Addr().(*net.TCPAddr).Port }

// Flows is how many connections it forwarded.
func (f *flowLimiter) Flows() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.conns) / 2
}

func (f *flowLimiter) accept() {
	defer f.wg.Done()
	for {
		in, err := f.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.DialTimeout("tcp", f.to, 10*time.Second)
		if err != nil {
			in.Close()
			continue
		}
		f.mu.Lock()
		f.conns = append(f.conns, in, out)
		f.mu.Unlock()
		f.wg.Add(2)
		go func() { defer f.wg.Done(); f.copyLimited(out, in); out.(*net.TCPConn).CloseWrite() }()
		go func() { defer f.wg.Done(); io.Copy(in, out); in.(*net.TCPConn).CloseWrite() }()
	}
}

// copyLimited copies src to dst at no more than f.rate bytes a second on
// average since the flow began.
func (f *flowLimiter) copyLimited(dst io.Writer, src io.Reader) {
	buf := make([]byte, 32<<10)
	start, sent := time.Now(), 0
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
			sent += n
			due := start.Add(time.Duration(float64(sent) / float64(f.rate) * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			}
		}
		if err != nil {
			return
		}
	}
}

func (f *flowLimiter) close() {
	f.ln.Close()
	f.mu.Lock()
	for _, c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

// TestNonConvergingFinishesWithParallel: between the hosts, a link that
// gives each TCP connection 8 MiB/s. A guest rewriting 64 MiB at 16 MiB/s
// does not converge over one connection (plain pre-copy, asserted); with
// --parallel --parallel-connections 4 QEMU's multifd channels are four
// flows, and the migration finishes with every page intact.
func TestNonConvergingFinishesWithParallel(t *testing.T) {
	t.Parallel()
	guest := nonConverging
	guest.DirtyRate = 16
	a, b, serial := twoHosts(t, "pl", guest)
	link := startFlowLimiter(t, nextAddr()+":0", b.Addr, 8<<20)
	uri := "tcp://" + net.JoinHostPort(link.ln.Addr().(*net.TCPAddr).IP.String(), strconv.Itoa(link.Port()))

	plain := background(t, 3*time.Minute, "virsh", "-c", a.URI(), "migrate", "--live", "--migrateuri", uri, "pl", b.URI())
	assertNotConverging(t, a, "pl", plain, 30*time.Second)
	MustVirsh(t, a.URI(), "domjobabort", "pl")
	if r := <-plain; r.Err == nil {
		t.Fatalf("aborted pre-copy: %s", r)
	}
	flows := link.Flows()

	before, _ := LastTick(serial)
	start := time.Now()
	if r := run(t, 3*time.Minute, "virsh", "-c", a.URI(), "migrate", "--live", "--migrateuri", uri,
		"--parallel", "--parallel-connections", "4", "pl", b.URI()); r.Err != nil {
		t.Fatal(r)
	}
	t.Logf("parallel, 4 connections: %s", time.Since(start).Round(time.Second))
	// The main channel and the four multifd ones went through the link.
	if got := link.Flows() - flows; got != 5 {
		t.Errorf("the parallel migration opened %d connections through the link, want 5 (main + 4 channels)", got)
	}
	checkMoved(t, a, b, "pl", serial, before)
}
