// Package flowlimit is a TCP proxy that limits every connection it
// forwards to a rate of its own: a link where each flow gets its share (a
// per-flow shaper, a long fat pipe whose window caps one TCP stream), the
// case parallel migration is for. The tests and the benchmark put it
// between two hosts with --migrateuri.
package flowlimit

import (
	"io"
	"net"
	"strconv"
	"sync"
	"time"
)

// Proxy forwards connections to the same port on another host, each
// limited to Rate bytes per second in the forwarded direction (the other
// direction is not limited).
type Proxy struct {
	ln    net.Listener
	to    string
	rate  int
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

// Listen listens on addr ("IP:0" picks a port) and forwards each
// connection to that port on toHost, at rate bytes/s per connection.
func Listen(addr, toHost string, rate int) (*Proxy, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, to: net.JoinHostPort(toHost, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)), rate: rate}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// URI is the migration URI that goes through the proxy (--migrateuri):
// the destination listens on the same port at its own address.
func (p *Proxy) URI() string {
	a := p.ln.Addr().(*net.TCPAddr)
	return "tcp://" + net.JoinHostPort(a.IP.String(), strconv.Itoa(a.Port))
}

// Flows is how many connections it has forwarded.
func (p *Proxy) Flows() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns) / 2
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.DialTimeout("tcp", p.to, 10*time.Second)
		if err != nil {
			in.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, in, out)
		p.mu.Unlock()
		p.wg.Add(2)
		go func() { defer p.wg.Done(); p.copyLimited(out, in); out.(*net.TCPConn).CloseWrite() }()
		go func() { defer p.wg.Done(); io.Copy(in, out); in.(*net.TCPConn).CloseWrite() }()
	}
}

// copyLimited copies src to dst at no more than p.rate bytes a second on
// average since the flow began.
func (p *Proxy) copyLimited(dst io.Writer, src io.Reader) {
	buf := make([]byte, 32<<10)
	start, sent := time.Now(), 0
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
			sent += n
			due := start.Add(time.Duration(float64(sent) / float64(p.rate) * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			}
		}
		if err != nil {
			return
		}
	}
}

// Close stops listening, closes every forwarded connection and waits for
// the copies to end.
func (p *Proxy) Close() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
