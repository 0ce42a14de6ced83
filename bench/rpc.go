package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/digitalocean/go-libvirt"
)

// rpcResult is one timed run of one workload at one concurrency.
type rpcResult struct {
	ops        int
	errs       int
	opsPerSec  float64
	p50, p99   time.Duration
	cpuPerCall time.Duration // daemon CPU (user+sys) per successful call
	// clientCPUPerCall is this program's CPU per call: the client shares the
	// machine's cores with the daemon, so it bounds what any daemon can show.
	clientCPUPerCall time.Duration
}

// callFunc issues one call on an open connection.
type callFunc func(l *libvirt.Libvirt, rng *rand.Rand) error

// workload names the calls a benchmark connection issues. setup is set for
// the connection-setup workload, whose "call" is dial + handshake + close.
type workload struct {
	name  string
	call  callFunc
	setup bool
}

// maxSamples bounds the latencies kept per connection: at the rates
// possible here a 2 s run never reaches it, it only caps memory.
const maxSamples = 1 << 20

// runRPC opens conns connections (each in its own goroutine) and has each
// issue calls back to back for d, recording every call's latency and the
// daemon's CPU time over the whole run.
func runRPC(h *host, w workload, conns int, d time.Duration) (rpcResult, error) {
	var res rpcResult
	clients := make([]*libvirt.Libvirt, conns)
	if !w.setup {
		for i := range clients {
			l, err := h.dial()
			if err != nil {
				closeAll(clients)
				return res, fmt.Errorf("dial %d: %w", i, err)
			}
			clients[i] = l
		}
	}
	defer closeAll(clients)

	lats := make([][]time.Duration, conns)
	errs := make([]int, conns)
	errOne := make([]error, conns)
	var wg sync.WaitGroup
	start := make(chan struct{})
	cpu0, _ := procCPU(h.pid())
	self0, _ := procCPU(os.Getpid())
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 42))
			buf := make([]time.Duration, 0, 4096)
			<-start
			end := time.Now().Add(d)
			for n := 0; n < maxSamples; n++ {
				t0 := time.Now()
				if !t0.Before(end) {
					break
				}
				var err error
				if w.setup {
					var l *libvirt.Libvirt
					if l, err = h.dial(); err == nil {
						err = l.Disconnect()
					}
				} else {
					err = w.call(clients[i], rng)
				}
				if err != nil {
					errs[i]++
					errOne[i] = err
					// A failing call returns at once: do not spin on it.
					time.Sleep(time.Millisecond)
					continue
				}
				buf = append(buf, time.Since(t0))
			}
			lats[i] = buf
		}(i)
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	el := time.Since(t0)
	cpu1, _ := procCPU(h.pid())
	self1, _ := procCPU(os.Getpid())

	var all []time.Duration
	for i := range lats {
		all = append(all, lats[i]...)
		res.errs += errs[i]
	}
	res.ops = len(all)
	if res.ops == 0 {
		for _, e := range errOne {
			if e != nil {
				return res, fmt.Errorf("%s on %s: no successful call: %w", w.name, h.kind, e)
			}
		}
		return res, fmt.Errorf("%s on %s: no call completed", w.name, h.kind)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	res.opsPerSec = float64(res.ops) / el.Seconds()
	res.p50 = all[len(all)/2]
	res.p99 = all[len(all)*99/100]
	res.cpuPerCall = (cpu1 - cpu0) / time.Duration(res.ops)
	res.clientCPUPerCall = (self1 - self0) / time.Duration(res.ops)
	return res, nil
}

func closeAll(cs []*libvirt.Libvirt) {
	for _, c := range cs {
		if c != nil {
			c.Disconnect()
		}
	}
}

// domainXML is the minimal inactive domain the RPC workloads use.
func domainXML(name string) string {
	return fmt.Sprintf(`<domain type='qemu'>
  <name>%s</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
  </os>
</domain>
`, name)
}

func benchName(i int) string { return fmt.Sprintf("bench-%04d", i) }

// defineUpTo defines bench-0000 … bench-(n-1) that are not defined yet,
// over 4 connections so libvirtd's per-define disk writes overlap.
func defineUpTo(h *host, have, n int) error {
	const par = 4
	var wg sync.WaitGroup
	errc := make(chan error, par)
	for p := 0; p < par; p++ {
		l, err := h.dial()
		if err != nil {
			return err
		}
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			defer l.Disconnect()
			for i := have + p; i < n; i += par {
				if _, err := l.DomainDefineXML(domainXML(benchName(i))); err != nil {
					errc <- fmt.Errorf("define %s on %s: %w", benchName(i), h.kind, err)
					return
				}
			}
		}(p)
	}
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

// undefineBench removes every domain named bench-* (inactive ones only:
// the RPC domains are never started).
func undefineBench(h *host) error {
	l, err := h.dial()
	if err != nil {
		return err
	}
	defer l.Disconnect()
	doms, _, err := l.ConnectListAllDomains(1, libvirt.ConnectListDomainsInactive)
	if err != nil {
		return err
	}
	for _, d := range doms {
		if len(d.Name) > 6 && d.Name[:6] == "bench-" {
			if err := l.DomainUndefine(d); err != nil {
				return fmt.Errorf("undefine %s on %s: %w", d.Name, h.kind, err)
			}
		}
	}
	return nil
}

// simpleWorkloads are the per-object calls, for a host with n bench domains
// defined. doms are those domains as the host names them (name + uuid is
// all a call needs, and it is valid on any connection), looked up once so
// that GetXMLDesc is timed alone.
func simpleWorkloads(n int, doms []libvirt.Domain) []workload {
	return []workload{
		{name: "ConnectGetLibVersion", call: func(l *libvirt.Libvirt, _ *rand.Rand) error {
			_, err := l.ConnectGetLibVersion()
			return err
		}},
		{name: "DomainLookupByName", call: func(l *libvirt.Libvirt, rng *rand.Rand) error {
			_, err := l.DomainLookupByName(benchName(rng.IntN(n)))
			return err
		}},
		{name: "DomainGetXMLDesc", call: func(l *libvirt.Libvirt, rng *rand.Rand) error {
			_, err := l.DomainGetXMLDesc(doms[rng.IntN(len(doms))], 0)
			return err
		}},
		{name: "connection setup", setup: true},
	}
}

func listAllWorkload(n int) workload {
	return workload{name: fmt.Sprintf("ConnectListAllDomains (%d)", n), call: func(l *libvirt.Libvirt, _ *rand.Rand) error {
		doms, _, err := l.ConnectListAllDomains(1, 0)
		if err == nil && len(doms) < n {
			err = fmt.Errorf("listed %d domains, want ≥ %d", len(doms), n)
		}
		return err
	}}
}

// lookupAll resolves the n bench domains on h.
func lookupAll(h *host, n int) ([]libvirt.Domain, error) {
	l, err := h.dial()
	if err != nil {
		return nil, err
	}
	defer l.Disconnect()
	doms := make([]libvirt.Domain, n)
	for i := range doms {
		if doms[i], err = l.DomainLookupByName(benchName(i)); err != nil {
			return nil, err
		}
	}
	return doms, nil
}
