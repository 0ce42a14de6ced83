// Package server is govirtd's libvirt RPC server: listeners from the
// libvirtd.conf-style configuration, client connections, dispatch of the
// remote program to handlers, keepalive and events. It knows connections and
// procedures, not QEMU: everything about the host goes through driver.Driver.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/govirtd/govirtd/driver"
	"github.com/govirtd/govirtd/server/config"
)

// Server serves libvirt clients on the configured sockets.
type Server struct {
	cfg *config.Config
	drv driver.Driver
	// The drivers beside the hypervisor one; nil when not configured.
	storage  driver.Storage
	networks driver.Networks
	secrets  driver.Secrets
	log      *slog.Logger
	table    *Table
	// qemuTable holds the QEMU program's procedures (qemu_protocol.x).
	qemuTable *Table

	listReplies listReplies // memo of ConnectListAllDomains replies

	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex
	listeners []net.Listener
	conns     map[*Conn]struct{}
	nextID    atomic.Uint64
	wg        sync.WaitGroup
}

// Option adds to a Server what the hypervisor driver does not do: the
// storage, network and secret drivers, each of its own package as in
// libvirt. A server without one answers for it as a host without any such
// objects does (handlers_nodomain.go).
type Option func(*Server)

// WithStorage serves the storage pool and volume procedures from st.
func WithStorage(st driver.Storage) Option { return func(s *Server) { s.storage = st } }

// WithNetworks serves the virtual network procedures from n.
func WithNetworks(n driver.Networks) Option { return func(s *Server) { s.networks = n } }

// WithSecrets serves the secret procedures from sec.
func WithSecrets(sec driver.Secrets) Option { return func(s *Server) { s.secrets = sec } }

// New returns a server for drv. Listen opens its sockets.
func New(cfg *config.Config, drv driver.Driver, log *slog.Logger, opts ...Option) *Server {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, drv: drv, log: log, ctx: ctx, cancel: cancel, conns: map[*Conn]struct{}{}}
	for _, o := range opts {
		o(s)
	}
	s.table = NewTable()
	registerHandlers(s.table, s)
	s.qemuTable = NewTable()
	registerQEMUHandlers(QEMUTable{s.qemuTable}, s)
	drv.SetEventSink(s.deliverEvent)
	if s.secrets != nil {
		s.secrets.SetSecretEventSink(s.deliverSecretEvent)
	}
	if s.networks != nil {
		s.networks.SetNetworkEventSink(s.deliverNetworkEvent)
	}
	if s.storage != nil {
		s.storage.SetStoragePoolEventSink(s.deliverStoragePoolEvent)
	}
	return s
}

// Table exposes the dispatch table (for listing implemented procedures).
func (s *Server) Table() *Table { return s.table }

// Listen opens the unix sockets and, when listen is set (the --listen flag),
// the TCP and TLS listeners, as libvirtd does. It fails without leaving any
// socket open if one of them cannot be opened.
func (s *Server) Listen(listen bool) (err error) {
	defer func() {
		if err != nil {
			s.closeListeners()
		}
	}()
	// The TLS credentials first: a daemon that cannot load them must not
	// start at all, as libvirtd does not.
	var tlsCtx *TLSContext
	if listen && s.cfg.ListenTLS {
		if tlsCtx, err = NewTLSContext(s.cfg); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(s.cfg.UnixSockDir, 0o755); err != nil {
		return fmt.Errorf("create unix_sock_dir: %w", err)
	}
	rw := filepath.Join(s.cfg.UnixSockDir, "libvirt-sock")
	ro := filepath.Join(s.cfg.UnixSockDir, "libvirt-sock-ro")
	if err := s.listenUnix(rw, s.cfg.UnixSockRWPerms, false); err != nil {
		return err
	}
	if err := s.listenUnix(ro, s.cfg.UnixSockROPerms, true); err != nil {
		return err
	}
	if listen && s.cfg.ListenTCP {
		addr := net.JoinHostPort(s.cfg.ListenAddr, s.cfg.TCPPort)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen on tcp %s: %w", addr, err)
		}
		// Plain TCP without authentication hands root-equivalent control
		// to anyone who can reach the port. The configuration had to say
		// auth_tcp = "none" explicitly (the default, sasl, is refused);
		// beyond loopback, say loudly what that means.
		if s.cfg.AuthTCP == "none" && !loopbackOnly(s.cfg.ListenAddr) {
			s.log.Warn("TCP listener without authentication on a non-loopback address: anyone who can reach it controls this host",
				"addr", l.Addr().String(), "hint", "use listen_tls with client certificates, or listen_addr on loopback")
		}
		s.serveListener(l, false, "tcp")
	}
	if tlsCtx != nil {
		addr := net.JoinHostPort(s.cfg.ListenAddr, s.cfg.TLSPort)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen on tls %s: %w", addr, err)
		}
		s.serveListener(newTLSListener(l, tlsCtx, s.cfg.MaxAnonymousClients, s.log), false, "tls")
	}
	return nil
}

func (s *Server) listenUnix(path string, perm os.FileMode, readOnly bool) error {
	// A socket file left by a daemon that died is stale: nothing can be
	// listening on it if we got this far with our own pid file. libvirtd
	// removes it the same way.
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return fmt.Errorf("%s exists and is not a socket", path)
		}
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return fmt.Errorf("%s: another daemon is listening on it", path)
		}
		os.Remove(path)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, perm); err != nil {
		l.Close()
		return fmt.Errorf("set permissions of %s: %w", path, err)
	}
	name := "unix-rw"
	if readOnly {
		name = "unix-ro"
	}
	s.serveListener(l, readOnly, name)
	return nil
}

func (s *Server) serveListener(l net.Listener, readOnly bool, name string) {
	s.mu.Lock()
	s.listeners = append(s.listeners, l)
	s.mu.Unlock()
	s.log.Info("listening", "listener", name, "addr", l.Addr().String())
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			nc, err := l.Accept()
			if err != nil {
				if errors.Is(err, net.ErrClosed) || s.ctx.Err() != nil {
					return
				}
				s.log.Warn("accept failed", "listener", name, "err", err)
				continue
			}
			s.accept(nc, readOnly, name)
		}
	}()
}

func (s *Server) accept(nc net.Conn, readOnly bool, name string) {
	s.mu.Lock()
	if len(s.conns) >= s.cfg.MaxClients {
		s.mu.Unlock()
		s.log.Warn("too many active clients, dropping connection", "max_clients", s.cfg.MaxClients, "listener", name)
		nc.Close()
		return
	}
	c := newConn(s, nc, readOnly, name, s.nextID.Add(1))
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		c.serve()
	}()
}

func (s *Server) forget(c *Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Addrs returns the addresses the server listens on.
func (s *Server) Addrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]net.Addr, len(s.listeners))
	for i, l := range s.listeners {
		out[i] = l.Addr()
	}
	return out
}

func (s *Server) closeListeners() {
	s.mu.Lock()
	ls := s.listeners
	s.listeners = nil
	s.mu.Unlock()
	for _, l := range ls {
		l.Close()
	}
}

// Close stops accepting, closes every connection and waits for them.
func (s *Server) Close() {
	s.cancel()
	s.closeListeners()
	s.mu.Lock()
	conns := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.close("daemon shutting down")
	}
	s.wg.Wait()
}

// loopbackOnly reports whether a listen address reaches only this machine.
func loopbackOnly(addr string) bool {
	if addr == "localhost" {
		return true
	}
	ip := net.ParseIP(addr)
	return ip != nil && ip.IsLoopback()
}
