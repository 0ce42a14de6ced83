package server_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver"
	"github.com/govirtd/govirtd/rpc"
	"github.com/govirtd/govirtd/server"
	"github.com/govirtd/govirtd/server/config"
	"github.com/govirtd/govirtd/xdr"
)

// streamDriver hands the stream of every PREPARE_TUNNEL3 call to the test.
// A call whose cookie is "fail" fails instead.
type streamDriver struct {
	driver.Domains
	driver.Migration
	driver.NodeQueries
	driver.DomainEdits
	driver.DomainStats
	driver.DomainSaves
	streams chan io.ReadCloser
}

func (f *streamDriver) SetEventSink(func(driver.Event)) {}
func (f *streamDriver) ConnectionClosed(uint64)         {}
func (f *streamDriver) Type() string                    { return "QEMU" }
func (f *streamDriver) URI() string                     { return "qemu:///system" }
func (f *streamDriver) Version() uint64                 { return 7002022 }
func (f *streamDriver) Hostname() string                { return "streamhost" }
func (f *streamDriver) Capabilities() string            { return "<capabilities/>" }
func (f *streamDriver) AcceptsURI(string) error         { return nil }
func (f *streamDriver) NodeInfo() driver.NodeInfo       { return driver.NodeInfo{} }
func (f *streamDriver) DomainCapabilities(string, string, string, string) (string, error) {
	return "", nil
}

func (f *streamDriver) MigratePrepareTunnel3(ctx context.Context, params []libvirt.TypedParam, cookie []byte, flags uint32, st io.ReadCloser) ([]byte, error) {
	if string(cookie) == "fail" {
		return nil, compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "prepare refused")
	}
	f.streams <- st
	return []byte("cookie-out"), nil
}

// startStreamServer runs a server with a streamDriver and returns the path
// of its read-write socket.
func startStreamServer(t *testing.T) (*streamDriver, string) {
	t.Helper()
	cfg := config.Default()
	cfg.UnixSockDir = t.TempDir()
	cfg.StateDir = t.TempDir()
	cfg.KeepaliveInterval = -1
	cfg.MaxClientRequests = 20
	drv := &streamDriver{streams: make(chan io.ReadCloser, 32)}
	srv := server.New(cfg, drv, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := srv.Listen(false); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return drv, filepath.Join(cfg.UnixSockDir, "libvirt-sock")
}

// rawConn is a hand-driven client connection.
type rawConn struct {
	t  *testing.T
	nc net.Conn
}

func dialStream(t *testing.T, sock string) *rawConn {
	t.Helper()
	nc, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	c := &rawConn{t: t, nc: nc}
	c.call(rpc.ProcConnectOpen, 0, &libvirt.ConnectOpenArgs{Name: libvirt.OptString{"qemu:///system"}})
	if p := c.read(); p.Type != rpc.Reply || p.Status != rpc.OK {
		t.Fatalf("open: %+v", p.Header)
	}
	return c
}

func (c *rawConn) write(h rpc.Header, body []byte) {
	c.t.Helper()
	h.Program, h.Version = rpc.ProgramRemote, rpc.ProtocolVersion
	b, err := rpc.AppendPacket(nil, h, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rawConn) call(proc rpc.Procedure, serial uint32, args any) {
	c.t.Helper()
	var body []byte
	if args != nil {
		var err error
		if body, err = xdr.Marshal(args); err != nil {
			c.t.Fatal(err)
		}
	}
	c.write(rpc.Header{Procedure: proc, Type: rpc.Call, Serial: serial}, body)
}

func (c *rawConn) data(serial uint32, status rpc.Status, body []byte) {
	c.t.Helper()
	c.write(rpc.Header{Procedure: rpc.ProcDomainMigratePrepareTunnel3Params, Type: rpc.Stream, Serial: serial, Status: status}, body)
}

func (c *rawConn) read() *rpc.Packet {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	p, err := rpc.ReadPacket(c.nc)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return p
}

// openTunnel calls PREPARE_TUNNEL3_PARAMS and returns the driver's stream.
func (c *rawConn) openTunnel(drv *streamDriver, serial uint32) io.ReadCloser {
	c.t.Helper()
	c.call(rpc.ProcDomainMigratePrepareTunnel3Params, serial, &libvirt.DomainMigratePrepareTunnel3ParamsArgs{CookieIn: []byte("in"), Flags: 7})
	p := c.read()
	if p.Type != rpc.Reply || p.Status != rpc.OK || p.Serial != serial {
		c.t.Fatalf("prepare reply: %+v", p.Header)
	}
	var ret libvirt.DomainMigratePrepareTunnel3ParamsRet
	if err := xdr.Unmarshal(p.Body, &ret); err != nil || string(ret.CookieOut) != "cookie-out" {
		c.t.Fatalf("prepare reply body %q: %v", ret.CookieOut, err)
	}
	select {
	case st := <-drv.streams:
		return st
	case <-time.After(5 * time.Second):
		c.t.Fatal("driver got no stream")
	}
	return nil
}

// expectStreamEnd reads the server's last stream message.
func (c *rawConn) expectStreamEnd(serial uint32, status rpc.Status) *rpc.Packet {
	c.t.Helper()
	p := c.read()
	if p.Type != rpc.Stream || p.Procedure != rpc.ProcDomainMigratePrepareTunnel3Params || p.Serial != serial || p.Status != status {
		c.t.Fatalf("got %+v, want STREAM %s for serial %d", p.Header, status, serial)
	}
	return p
}

// hostname makes a call and expects its reply: the connection still works.
func (c *rawConn) hostname(serial uint32) {
	c.t.Helper()
	c.call(rpc.ProcConnectGetHostname, serial, nil)
	p := c.read()
	if p.Type != rpc.Reply || p.Serial != serial || p.Status != rpc.OK {
		c.t.Fatalf("hostname reply: %+v", p.Header)
	}
}

func readAllTimeout(t *testing.T, r io.Reader) ([]byte, error) {
	t.Helper()
	type res struct {
		b   []byte
		err error
	}
	ch := make(chan res, 1)
	go func() { b, err := io.ReadAll(r); ch <- res{b, err} }()
	select {
	case r := <-ch:
		return r.b, r.err
	case <-time.After(5 * time.Second):
		t.Fatal("stream read blocked")
	}
	return nil, nil
}

func TestStreamDataArrivesInOrderAndEndIsConfirmed(t *testing.T) {
	drv, sock := startStreamServer(t)
	c := dialStream(t, sock)
	st := c.openTunnel(drv, 9)
	var want []byte
	for i, n := range []int{1, rpc.InitialSize, 3, 100000} {
		chunk := bytes.Repeat([]byte{byte('a' + i)}, n)
		want = append(want, chunk...)
		c.data(9, rpc.Continue, chunk)
	}
	c.data(9, rpc.OK, nil)
	got, err := readAllTimeout(t, st)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes (want %d), err %v", len(got), len(want), err)
	}
	// Nothing is confirmed until the driver is done with the data.
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if p := c.expectStreamEnd(9, rpc.OK); len(p.Body) != 0 {
		t.Errorf("end confirmation has a %d-byte body", len(p.Body))
	}
	c.hostname(10)
}

func TestStreamClientAbort(t *testing.T) {
	drv, sock := startStreamServer(t)
	c := dialStream(t, sock)
	st := c.openTunnel(drv, 3)
	c.data(3, rpc.Continue, []byte("partial"))
	body, _ := xdr.Marshal(&rpc.RemoteError{Code: int32(libvirt.ErrOperationAborted), Domain: 10,
		Message: libvirt.OptString{"operation aborted: job 'migration out' canceled by client"}, Level: 2, Int1: -1, Int2: -1})
	c.data(3, rpc.Error, body)
	// The abort is confirmed with an empty STREAM OK, as libvirtd does.
	c.expectStreamEnd(3, rpc.OK)
	_, err := readAllTimeout(t, st)
	if !compat.Is(err, libvirt.ErrOperationAborted) || !strings.Contains(err.Error(), "canceled by client") {
		t.Fatalf("reader got %v, want the client's abort", err)
	}
	st.Close() // nothing more is sent
	c.hostname(4)
}

func TestStreamClientAbortWithoutBody(t *testing.T) {
	// libvirt's own client aborts with an empty ERROR message.
	drv, sock := startStreamServer(t)
	c := dialStream(t, sock)
	st := c.openTunnel(drv, 3)
	c.data(3, rpc.Error, nil)
	c.expectStreamEnd(3, rpc.OK)
	if _, err := readAllTimeout(t, st); err == nil || !strings.Contains(err.Error(), "stream aborted at client request") {
		t.Fatalf("reader got %v", err)
	}
}

func TestStreamDriverFailureIsStreamError(t *testing.T) {
	drv, sock := startStreamServer(t)
	c := dialStream(t, sock)
	st := c.openTunnel(drv, 5)
	c.data(5, rpc.Continue, []byte("x"))
	st.(driver.ErrorCloser).CloseWithError(compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "QEMU went away"))
	p := c.expectStreamEnd(5, rpc.Error)
	var re rpc.RemoteError
	if err := xdr.Unmarshal(p.Body, &re); err != nil || re.Code != int32(libvirt.ErrOperationFailed) || re.Message[0] != "operation failed: QEMU went away" {
		t.Fatalf("stream error %+v: %v", re, err)
	}
	// Data the client still sends is dropped; the connection carries on.
	c.data(5, rpc.Continue, []byte("late"))
	c.data(5, rpc.OK, nil)
	c.hostname(6)
}

func TestStreamClosedEarlyIsStreamError(t *testing.T) {
	drv, sock := startStreamServer(t)
	c := dialStream(t, sock)
	st := c.openTunnel(drv, 5)
	st.Close() // the client has not ended the stream
	c.expectStreamEnd(5, rpc.Error)
}

func TestStreamUnknownSerialDropped(t *testing.T) {
	drv, sock := startStreamServer(t)
	c := dialStream(t, sock)
	c.data(77, rpc.Continue, []byte("nobody's"))
	c.data(77, rpc.OK, nil)
	c.write(rpc.Header{Procedure: 1, Type: rpc.StreamHole, Serial: 78}, []byte{1, 2})
	c.hostname(1)
	// A known serial with another procedure is not that stream either.
	st := c.openTunnel(drv, 2)
	c.write(rpc.Header{Procedure: rpc.ProcConnectOpen, Type: rpc.Stream, Serial: 2, Status: rpc.Continue}, []byte("wrong proc"))
	c.data(2, rpc.Continue, []byte("right"))
	c.data(2, rpc.OK, nil)
	if got, err := readAllTimeout(t, st); err != nil || string(got) != "right" {
		t.Fatalf("got %q, %v", got, err)
	}
}

func TestStreamHostileStatusAndHole(t *testing.T) {
	drv, sock := startStreamServer(t)
	c := dialStream(t, sock)
	st := c.openTunnel(drv, 1)
	c.data(1, rpc.Status(42), []byte("??"))
	c.expectStreamEnd(1, rpc.Error)
	if _, err := readAllTimeout(t, st); err == nil || !strings.Contains(err.Error(), "unexpected status 42") {
		t.Fatalf("reader got %v", err)
	}
	st = c.openTunnel(drv, 2)
	c.write(rpc.Header{Procedure: rpc.ProcDomainMigratePrepareTunnel3Params, Type: rpc.StreamHole, Serial: 2}, []byte{0})
	c.expectStreamEnd(2, rpc.Error)
	if _, err := readAllTimeout(t, st); err == nil || !strings.Contains(err.Error(), "Unexpected stream hole") {
		t.Fatalf("reader got %v", err)
	}
	c.hostname(3)
}

func TestStreamConnectionCloseAbortsReader(t *testing.T) {
	drv, sock := startStreamServer(t)
	c := dialStream(t, sock)
	st := c.openTunnel(drv, 1)
	c.data(1, rpc.Continue, []byte("some"))
	c.nc.Close()
	if _, err := readAllTimeout(t, st); err == nil || !strings.Contains(err.Error(), "connection closed") {
		t.Fatalf("reader got %v, want an error", err)
	}
	st.Close()
}

func TestStreamFailedCallDiscardsStream(t *testing.T) {
	_, sock := startStreamServer(t)
	c := dialStream(t, sock)
	c.call(rpc.ProcDomainMigratePrepareTunnel3Params, 1, &libvirt.DomainMigratePrepareTunnel3ParamsArgs{CookieIn: []byte("fail"), Flags: 7})
	p := c.read()
	if p.Type != rpc.Reply || p.Status != rpc.Error {
		t.Fatalf("got %+v", p.Header)
	}
	c.data(1, rpc.Continue, []byte("x"))
	c.data(1, rpc.OK, nil)
	c.hostname(2)
}

func TestTooManyStreamsRefused(t *testing.T) {
	drv, sock := startStreamServer(t)
	c := dialStream(t, sock)
	var open []io.ReadCloser
	for serial := uint32(1); ; serial++ {
		c.call(rpc.ProcDomainMigratePrepareTunnel3Params, serial, &libvirt.DomainMigratePrepareTunnel3ParamsArgs{Flags: 7})
		p := c.read()
		if p.Status == rpc.Error {
			var re rpc.RemoteError
			xdr.Unmarshal(p.Body, &re)
			if len(open) < 2 || len(re.Message) != 1 || !strings.Contains(re.Message[0], "too many open streams") {
				t.Fatalf("after %d streams: %+v %q", len(open), p.Header, re.Message)
			}
			break
		}
		open = append(open, <-drv.streams)
		if serial > 100 {
			t.Fatal("no limit on open streams")
		}
	}
	// Ending one makes room for another.
	open[0].(driver.ErrorCloser).CloseWithError(errors.New("done"))
	c.expectStreamEnd(1, rpc.Error)
	c.openTunnel(drv, 1000)
}

// TestStreamFlowControl: a client cannot make the server buffer more than
// a bounded amount; its connection stalls until the reader catches up.
func TestStreamFlowControl(t *testing.T) {
	drv, sock := startStreamServer(t)
	c := dialStream(t, sock)
	st := c.openTunnel(drv, 1)
	chunk := bytes.Repeat([]byte{7}, 1<<20)
	const chunks = 12
	var out []byte
	hdr := rpc.Header{Program: rpc.ProgramRemote, Version: rpc.ProtocolVersion, Procedure: rpc.ProcDomainMigratePrepareTunnel3Params, Type: rpc.Stream, Serial: 1, Status: rpc.Continue}
	for i := 0; i < chunks; i++ {
		out, _ = rpc.AppendPacket(out, hdr, chunk)
	}
	hdr.Status = rpc.OK
	out, _ = rpc.AppendPacket(out, hdr, nil)
	out, _ = rpc.AppendPacket(out, rpc.Header{Program: rpc.ProgramRemote, Version: rpc.ProtocolVersion, Procedure: rpc.ProcConnectGetHostname, Type: rpc.Call, Serial: 2}, nil)
	go c.nc.Write(out) // blocks until the server reads it all
	// Nobody reads the stream: the call behind the data is not served.
	c.nc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if p, err := rpc.ReadPacket(c.nc); err == nil {
		t.Fatalf("server read past a full stream buffer: got %+v", p.Header)
	}
	got, err := readAllTimeout(t, st)
	if err != nil || len(got) != chunks<<20 {
		t.Fatalf("read %d bytes: %v", len(got), err)
	}
	p := c.read()
	if p.Type != rpc.Reply || p.Serial != 2 {
		t.Fatalf("got %+v", p.Header)
	}
	st.Close()
	c.expectStreamEnd(1, rpc.OK)
}
