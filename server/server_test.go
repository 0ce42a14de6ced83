package server_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver"
	"github.com/govirtd/govirtd/rpc"
	"github.com/govirtd/govirtd/server"
	"github.com/govirtd/govirtd/server/config"
	"github.com/govirtd/govirtd/xdr"
)

// fakeDriver answers host queries with fixed values; DomainCapabilities
// (a call that may take long in a real driver: it can probe QEMU) can be
// made to block to test that one slow call holds up nobody else.
type fakeDriver struct {
	// Domain calls other than ListAllDomains are not faked: calling one
	// panics, which the server must turn into an error reply.
	driver.Domains
	driver.Migration
	driver.NodeQueries
	driver.DomainEdits
	driver.DomainStats
	driver.DomainSaves
	block chan struct{} // when non-nil, DomainCapabilities waits for it
}

func (f *fakeDriver) SetEventSink(func(driver.Event)) {}
func (f *fakeDriver) ConnectionClosed(uint64)         {}

func (f *fakeDriver) Type() string         { return "QEMU" }
func (f *fakeDriver) URI() string          { return "qemu:///system" }
func (f *fakeDriver) Version() uint64      { return 7002022 }
func (f *fakeDriver) Hostname() string     { return "fakehost" }
func (f *fakeDriver) Capabilities() string { return "<capabilities/>" }
func (f *fakeDriver) DomainCapabilities(string, string, string, string) (string, error) {
	if f.block != nil {
		<-f.block
	}
	return "<domainCapabilities/>", nil
}
func (f *fakeDriver) NodeInfo() driver.NodeInfo {
	return driver.NodeInfo{Model: "x86_64", Memory: 1024, CPUs: 2, MHz: 1000, Nodes: 1, Sockets: 1, Cores: 2, Threads: 1}
}
func (f *fakeDriver) AcceptsURI(name string) error {
	if name == "" || name == "qemu:///system" {
		return nil
	}
	return compat.Errorf(libvirt.ErrNoConnect, compat.FromNone, "%s", name)
}
func (f *fakeDriver) ListAllDomains(ctx context.Context, flags libvirt.ConnectListAllDomainsFlags) ([]libvirt.Domain, error) {
	return []libvirt.Domain{{Name: "demo", ID: 1}}, nil
}

type testServer struct {
	srv *server.Server
	dir string
	drv *fakeDriver
}

func start(t *testing.T, mutate func(*config.Config)) *testServer {
	t.Helper()
	return startLogged(t, mutate, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func startLogged(t *testing.T, mutate func(*config.Config), log *slog.Logger) *testServer {
	t.Helper()
	cfg := config.Default()
	cfg.UnixSockDir = t.TempDir()
	cfg.StateDir = t.TempDir()
	cfg.KeepaliveInterval = -1
	if mutate != nil {
		mutate(cfg)
	}
	drv := &fakeDriver{}
	srv := server.New(cfg, drv, log)
	if err := srv.Listen(false); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return &testServer{srv: srv, dir: cfg.UnixSockDir, drv: drv}
}

func (ts *testServer) dial(t *testing.T, sock string) net.Conn {
	t.Helper()
	c, err := net.Dial("unix", filepath.Join(ts.dir, sock))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// client opens a go-libvirt connection: a real libvirt client
// implementation doing the real handshake.
func (ts *testServer) client(t *testing.T, sock string) *libvirt.Libvirt {
	t.Helper()
	l := libvirt.NewWithDialer(dialers.NewAlreadyConnected(ts.dial(t, sock)))
	if err := l.Connect(); err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { l.Disconnect() })
	return l
}

func TestHandshakeAndHostQueries(t *testing.T) {
	ts := start(t, nil)
	l := ts.client(t, "libvirt-sock")
	if h, err := l.ConnectGetHostname(); err != nil || h != "fakehost" {
		t.Errorf("hostname %q, %v", h, err)
	}
	if v, err := l.ConnectGetVersion(); err != nil || v != 7002022 {
		t.Errorf("version %d, %v", v, err)
	}
	if v, err := l.ConnectGetLibVersion(); err != nil || v != 9000000 {
		t.Errorf("lib version %d, %v", v, err)
	}
	model, mem, cpus, _, _, _, _, _, err := l.NodeGetInfo()
	if err != nil || mem != 1024 || cpus != 2 || model[0] != 'x' {
		t.Errorf("nodeinfo %v %d %d: %v", model[:6], mem, cpus, err)
	}
	for f, want := range map[int32]int32{10: 1, 14: 1, 15: 1, 1: 0, 3: 0, 5: 0} {
		got, err := l.ConnectSupportsFeature(f)
		if err != nil || got != want {
			t.Errorf("feature %d = %d (%v), want %d", f, got, err, want)
		}
	}
	doms, n, err := l.ConnectListAllDomains(1, 3)
	if err != nil || n != 1 || len(doms) != 1 || doms[0].Name != "demo" {
		t.Errorf("list: %v %d %v", doms, n, err)
	}
}

func TestUnimplementedProcedureIsNoSupport(t *testing.T) {
	ts := start(t, nil)
	l := ts.client(t, "libvirt-sock")
	_, err := l.ConnectGetMaxVcpus(libvirt.OptString{"kvm"})
	var le libvirt.Error
	if !errors.As(err, &le) || le.Code != uint32(libvirt.ErrNoSupport) {
		t.Fatalf("got %v, want VIR_ERR_NO_SUPPORT", err)
	}
	if !strings.Contains(le.Message, "this function is not supported by the connection driver: virConnectGetMaxVcpus") {
		t.Errorf("message %q", le.Message)
	}
	// The connection survives the error.
	if _, err := l.ConnectGetHostname(); err != nil {
		t.Errorf("after error: %v", err)
	}
}

func TestReadOnlySocketRefusesChanges(t *testing.T) {
	ts := start(t, nil)
	l := ts.client(t, "libvirt-sock-ro")
	if _, err := l.ConnectGetHostname(); err != nil {
		t.Fatalf("query on read-only socket: %v", err)
	}
	_, err := l.DomainDefineXML("<domain/>")
	var le libvirt.Error
	if !errors.As(err, &le) || le.Code != uint32(libvirt.ErrOperationDenied) || !strings.Contains(le.Message, "read only access prevents virDomainDefineXML") {
		t.Fatalf("define on read-only socket: %v", err)
	}
	if err := l.DomainMigrateConfirm3Params(libvirt.Domain{Name: "x"}, nil, nil, 0, 0); err == nil || !strings.Contains(err.Error(), "read only") {
		t.Fatalf("migration step on read-only socket: %v", err)
	}
}

func TestOtherDriverURIRefused(t *testing.T) {
	ts := start(t, nil)
	l := libvirt.NewWithDialer(dialers.NewAlreadyConnected(ts.dial(t, "libvirt-sock")))
	err := l.ConnectToURI("test:///default")
	if err == nil || !strings.Contains(err.Error(), "no connection driver available for test:///default") {
		t.Fatalf("got %v", err)
	}
}

// TestSlowCallBlocksNobody: a call stuck in the driver holds up neither
// other calls on its own connection nor other clients.
func TestSlowCallBlocksNobody(t *testing.T) {
	ts := start(t, nil)
	ts.drv.block = make(chan struct{})
	l := ts.client(t, "libvirt-sock")
	other := ts.client(t, "libvirt-sock")
	done := make(chan error, 1)
	go func() {
		_, err := l.ConnectGetDomainCapabilities(nil, nil, nil, nil, 0)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	for name, c := range map[string]*libvirt.Libvirt{"same connection": l, "other client": other} {
		got := make(chan error, 1)
		go func() { _, err := c.ConnectGetHostname(); got <- err }()
		select {
		case err := <-got:
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: hostname blocked behind a slow call", name)
		}
	}
	select {
	case <-done:
		t.Fatal("slow call returned before it was released")
	default:
	}
	close(ts.drv.block)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// raw helpers for hostile input.

func callPacket(t *testing.T, proc rpc.Procedure, serial uint32, args any) []byte {
	t.Helper()
	var body []byte
	if args != nil {
		var err error
		if body, err = xdr.Marshal(args); err != nil {
			t.Fatal(err)
		}
	}
	b, err := rpc.AppendPacket(nil, rpc.Header{Program: rpc.ProgramRemote, Version: 1, Procedure: proc, Type: rpc.Call, Serial: serial}, body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readReply(t *testing.T, c net.Conn) *rpc.Packet {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	p, err := rpc.ReadPacket(c)
	if err != nil {
		t.Fatalf("read reply: %v", err)
	}
	return p
}

func expectError(t *testing.T, c net.Conn, serial uint32, code libvirt.ErrorNumber, text string) {
	t.Helper()
	p := readReply(t, c)
	if p.Type != rpc.Reply || p.Status != rpc.Error || p.Serial != serial {
		t.Fatalf("got %+v, want an error reply to serial %d", p.Header, serial)
	}
	var re rpc.RemoteError
	if err := xdr.Unmarshal(p.Body, &re); err != nil {
		t.Fatal(err)
	}
	if re.Code != int32(code) || len(re.Message) != 1 || !strings.Contains(re.Message[0], text) {
		t.Fatalf("error %d %q, want %d containing %q", re.Code, re.Message, code, text)
	}
}

func openRaw(t *testing.T, ts *testServer) net.Conn {
	c := ts.dial(t, "libvirt-sock")
	c.Write(callPacket(t, rpc.ProcConnectOpen, 1, &libvirt.ConnectOpenArgs{Name: libvirt.OptString{"qemu:///system"}}))
	if p := readReply(t, c); p.Status != rpc.OK {
		t.Fatalf("open: %+v", p.Header)
	}
	return c
}

func TestBadInputGetsErrorsNotCrashes(t *testing.T) {
	ts := start(t, nil)
	c := openRaw(t, ts)

	// Garbage XDR for a known procedure: an error reply, connection kept.
	bad, _ := rpc.AppendPacket(nil, rpc.Header{Program: rpc.ProgramRemote, Version: 1, Procedure: rpc.ProcConnectListAllDomains, Type: rpc.Call, Serial: 2}, []byte{0xff, 0xff, 0xff, 0xff, 1})
	c.Write(bad)
	expectError(t, c, 2, libvirt.ErrRPC, "Unable to decode message payload")

	// Unknown procedure number.
	c.Write(callPacket(t, rpc.Procedure(99999), 3, nil))
	expectError(t, c, 3, libvirt.ErrRPC, "unknown procedure: 99999")

	// Unknown program.
	unk, _ := rpc.AppendPacket(nil, rpc.Header{Program: 0x12345678, Version: 1, Procedure: 1, Type: rpc.Call, Serial: 4}, nil)
	c.Write(unk)
	expectError(t, c, 4, libvirt.ErrRPC, "Cannot find program")

	// Still serving.
	c.Write(callPacket(t, rpc.ProcConnectGetHostname, 5, nil))
	if p := readReply(t, c); p.Status != rpc.OK || p.Serial != 5 {
		t.Fatalf("hostname after bad input: %+v", p.Header)
	}

	// A length over the 32 MiB cap closes this connection only.
	var huge [4]byte
	binary.BigEndian.PutUint32(huge[:], rpc.MaxMessage+1)
	c.Write(huge[:])
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("connection stayed open after an oversized length")
	}
	l := ts.client(t, "libvirt-sock")
	if _, err := l.ConnectGetHostname(); err != nil {
		t.Fatalf("another client after the bad one: %v", err)
	}
}

// TestHandlerPanicIsAnError: a bug in a handler costs that call, not the
// daemon or the connection.
func TestHandlerPanicIsAnError(t *testing.T) {
	ts := start(t, nil)
	l := ts.client(t, "libvirt-sock")
	_, err := l.DomainLookupByName("x")
	var le libvirt.Error
	if !errors.As(err, &le) || le.Code != uint32(libvirt.ErrInternalError) {
		t.Fatalf("got %v, want an internal error", err)
	}
	if _, err := l.ConnectGetHostname(); err != nil {
		t.Fatalf("connection unusable after a handler panic: %v", err)
	}
}

func TestCallsBeforeOpenRefused(t *testing.T) {
	ts := start(t, nil)
	c := ts.dial(t, "libvirt-sock")
	c.Write(callPacket(t, rpc.ProcConnectGetHostname, 1, nil))
	expectError(t, c, 1, libvirt.ErrInternalError, "connection not open")
	// Keepalive support is asked before open, as virsh does.
	c.Write(callPacket(t, rpc.ProcConnectSupportsFeature, 2, &libvirt.ConnectSupportsFeatureArgs{Feature: 10}))
	p := readReply(t, c)
	if p.Status != rpc.OK || !bytes.Equal(p.Body, []byte{0, 0, 0, 1}) {
		t.Fatalf("keepalive feature before open: %+v %x", p.Header, p.Body)
	}
}

func TestKeepalive(t *testing.T) {
	ts := start(t, func(c *config.Config) { c.KeepaliveInterval = 1; c.KeepaliveCount = 2 })
	c := openRaw(t, ts)
	c.Write(keepalivePacket(t, rpc.KeepalivePing))
	if p := readReply(t, c); p.Program != rpc.ProgramKeepalive || p.Procedure != rpc.KeepalivePong {
		t.Fatalf("PING answered with %+v", p.Header)
	}
	// Ask for keepalive, then go silent: the server pings keepalive_count
	// times, an interval apart, then drops us an interval after the last.
	c.Write(callPacket(t, rpc.ProcConnectSupportsFeature, 2, &libvirt.ConnectSupportsFeatureArgs{Feature: 10}))
	readReply(t, c)
	start := time.Now()
	pings := 0
	for {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		p, err := rpc.ReadPacket(c)
		if err != nil {
			break
		}
		if p.Program == rpc.ProgramKeepalive && p.Procedure == rpc.KeepalivePing {
			pings++
		}
	}
	if pings != 2 || time.Since(start) > 9*time.Second {
		t.Fatalf("got %d pings and a close after %v; want 2 pings, then a close after ~3 s", pings, time.Since(start))
	}
}

// The first ping is due an interval after the client's last message, as
// libvirtd sends it, not up to two intervals later at the tick of a clock
// of the server's own. A libvirt client that missed a wake-up (see
// keepaliveLoop) waits for exactly that ping.
func TestKeepalivePingsAnIntervalAfterLastMessage(t *testing.T) {
	ts := start(t, func(c *config.Config) { c.KeepaliveInterval = 2; c.KeepaliveCount = 5 })
	c := openRaw(t, ts)
	c.Write(callPacket(t, rpc.ProcConnectSupportsFeature, 2, &libvirt.ConnectSupportsFeatureArgs{Feature: 10}))
	readReply(t, c)
	// Half an interval later, one more message: a server ticking every
	// interval since the connection opened would ping 1.5 intervals after
	// it, at its second tick.
	time.Sleep(time.Second)
	c.Write(keepalivePacket(t, rpc.KeepalivePong))
	last := time.Now()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	p, err := rpc.ReadPacket(c)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(last)
	if p.Program != rpc.ProgramKeepalive || p.Procedure != rpc.KeepalivePing {
		t.Fatalf("got %+v, want a PING", p.Header)
	}
	if took < 1900*time.Millisecond || took > 2700*time.Millisecond {
		t.Fatalf("PING %v after the client's last message; want keepalive_interval (2 s)", took)
	}
}

// keepalive_count = 0: libvirtd closes a client silent for an interval
// without pinging it.
func TestKeepaliveCountZeroClosesWithoutPing(t *testing.T) {
	ts := start(t, func(c *config.Config) { c.KeepaliveInterval = 1; c.KeepaliveCount = 0 })
	c := openRaw(t, ts)
	c.Write(callPacket(t, rpc.ProcConnectSupportsFeature, 2, &libvirt.ConnectSupportsFeatureArgs{Feature: 10}))
	readReply(t, c)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	p, err := rpc.ReadPacket(c)
	if err == nil {
		t.Fatalf("got %+v, want the connection closed", p.Header)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("connection still open after 10 s of silence")
	}
}

// A client waiting on a call is pinged after a second of silence, not only
// after keepalive_interval: libvirt's client can sit on a call it queued
// from a second thread until the server sends something (see
// waitingClientPing). Once the call is answered, only the dead-peer
// schedule is left.
func TestKeepaliveWakesClientWaitingOnCall(t *testing.T) {
	ts := start(t, func(c *config.Config) { c.KeepaliveInterval = 5; c.KeepaliveCount = 5 })
	ts.drv.block = make(chan struct{})
	release := sync.OnceFunc(func() { close(ts.drv.block) })
	t.Cleanup(release) // before the server's Close, which waits for the call
	c := openRaw(t, ts)
	c.Write(callPacket(t, rpc.ProcConnectSupportsFeature, 2, &libvirt.ConnectSupportsFeatureArgs{Feature: 10}))
	readReply(t, c)
	c.Write(callPacket(t, rpc.ProcConnectGetDomainCapabilities, 3, &libvirt.ConnectGetDomainCapabilitiesArgs{}))
	sent := time.Now()
	for i := 0; i < 2; i++ {
		c.SetReadDeadline(time.Now().Add(4 * time.Second))
		p, err := rpc.ReadPacket(c)
		if err != nil {
			t.Fatalf("no ping %v after the client's last message, with a call in flight: %v", time.Since(sent), err)
		}
		if p.Program != rpc.ProgramKeepalive || p.Procedure != rpc.KeepalivePing {
			t.Fatalf("got %+v, want a PING", p.Header)
		}
		if took := time.Since(sent); took < 900*time.Millisecond {
			t.Fatalf("PING %v after the client's last message; want a second of silence first", took)
		}
		// Answered, the next one comes a second after the answer.
		c.Write(keepalivePacket(t, rpc.KeepalivePong))
		sent = time.Now()
	}
	release()
	if p := readReply(t, c); p.Serial != 3 || p.Status != rpc.OK {
		t.Fatalf("reply %+v", p.Header)
	}
	// No call in flight: nothing until keepalive_interval.
	c.SetReadDeadline(time.Now().Add(2500 * time.Millisecond))
	if p, err := rpc.ReadPacket(c); err == nil {
		t.Fatalf("got %+v with no call in flight, 2.5 s into a 5 s interval", p.Header)
	}
}

func keepalivePacket(t *testing.T, proc rpc.Procedure) []byte {
	t.Helper()
	b, err := rpc.AppendPacket(nil, rpc.Header{Program: rpc.ProgramKeepalive, Version: 1, Procedure: proc, Type: rpc.Message}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMaxClientRequestsBoundsInflight(t *testing.T) {
	ts := start(t, func(c *config.Config) { c.MaxClientRequests = 2 })
	ts.drv.block = make(chan struct{})
	c := openRaw(t, ts)
	for i := uint32(10); i < 13; i++ {
		c.Write(callPacket(t, rpc.ProcConnectGetDomainCapabilities, i, &libvirt.ConnectGetDomainCapabilitiesArgs{}))
	}
	c.Write(callPacket(t, rpc.ProcConnectGetHostname, 20, nil))
	// Two calls are in the driver; the third and the hostname wait unread.
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := rpc.ReadPacket(c); err == nil {
		t.Fatal("a reply arrived although every slot was blocked")
	}
	close(ts.drv.block)
	seen := map[uint32]bool{}
	for len(seen) < 4 {
		p := readReply(t, c)
		seen[p.Serial] = true
	}
}

// recMigration records what the migration handlers pass to the driver.
type recMigration struct {
	driver.Migration
	params []libvirt.TypedParam
	flags  uint32
}

func (r *recMigration) MigrateBegin3(ctx context.Context, dom libvirt.Domain, p []libvirt.TypedParam, flags uint32) ([]byte, string, error) {
	r.params, r.flags = p, flags
	return []byte("cookie\x00"), "<domain/>", nil
}

func (r *recMigration) MigratePrepare3(ctx context.Context, p []libvirt.TypedParam, cookie []byte, flags uint32) ([]byte, string, error) {
	r.params, r.flags = p, flags
	return []byte("c2\x00"), "tcp:127.0.0.3:49152", nil
}

// TestLegacyMigrationProcedures: the pre-params migration procedures
// become the typed parameters they stand for.
func TestLegacyMigrationProcedures(t *testing.T) {
	ts := start(t, nil)
	rec := &recMigration{}
	ts.drv.Migration = rec
	l := ts.client(t, "libvirt-sock")
	cookie, xml, err := l.DomainMigrateBegin3(libvirt.Domain{Name: "d"}, libvirt.OptString{"<domain><name>d</name></domain>"}, 0x101, libvirt.OptString{"newname"}, 5)
	if err != nil || string(cookie) != "cookie\x00" || xml != "<domain/>" {
		t.Fatalf("begin3: %q %q %v", cookie, xml, err)
	}
	want := map[string]any{"bandwidth": uint64(5), "destination_name": "newname", "destination_xml": "<domain><name>d</name></domain>"}
	if len(rec.params) != len(want) || rec.flags != 0x101 {
		t.Fatalf("begin3 params %+v flags %#x", rec.params, rec.flags)
	}
	for _, p := range rec.params {
		if want[p.Field] != p.Value.I {
			t.Errorf("param %s = %v, want %v", p.Field, p.Value.I, want[p.Field])
		}
	}
	_, uri, err := l.DomainMigratePrepare3([]byte("x"), libvirt.OptString{"tcp:127.0.0.3:49152"}, 1, nil, 0, "<domain/>")
	if err != nil || len(uri) != 1 || uri[0] != "tcp:127.0.0.3:49152" {
		t.Fatalf("prepare3: %v %v", uri, err)
	}
	found := false
	for _, p := range rec.params {
		found = found || (p.Field == "migrate_uri" && p.Value.I == "tcp:127.0.0.3:49152")
	}
	if !found {
		t.Errorf("prepare3 did not pass uri_in as migrate_uri: %+v", rec.params)
	}
}

// log_rpc_calls = 1 logs every call by itself, at libvirtd's default
// log_level (warnings) too; without it, nothing is logged per call.
func TestCallLogWhateverTheLevel(t *testing.T) {
	for _, on := range []bool{true, false} {
		var buf syncBuffer
		log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
		ts := startLogged(t, func(c *config.Config) { c.LogRPCCalls = on }, log)
		l := ts.client(t, "libvirt-sock")
		if _, err := l.ConnectGetHostname(); err != nil {
			t.Fatal(err)
		}
		l.Disconnect()
		ts.srv.Close()
		got := buf.String()
		logged := strings.Contains(got, "msg=\"rpc call\"") && strings.Contains(got, "proc=CONNECT_GET_HOSTNAME")
		if logged != on {
			t.Errorf("log_rpc_calls=%v at level warning: call logged %v; log:\n%s", on, logged, got)
		}
	}
}

// syncBuffer is a bytes.Buffer the server's goroutines may write while the
// test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
