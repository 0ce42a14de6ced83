package client_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver"
	"github.com/govirtd/govirtd/rpc"
	"github.com/govirtd/govirtd/rpc/client"
	"github.com/govirtd/govirtd/server"
	"github.com/govirtd/govirtd/server/config"
)

// tunnelDriver receives tunnelled migration streams: it reads each to the
// end, reports what it got, and closes it with failWith (nil: success).
type tunnelDriver struct {
	driver.Domains
	driver.Migration
	driver.NodeQueries
	driver.DomainEdits
	driver.DomainStats
	driver.DomainSaves
	got      chan []byte
	failWith error
}

func (f *tunnelDriver) SetEventSink(func(driver.Event)) {}
func (f *tunnelDriver) ConnectionClosed(uint64)         {}
func (f *tunnelDriver) Type() string                    { return "QEMU" }
func (f *tunnelDriver) URI() string                     { return "qemu:///system" }
func (f *tunnelDriver) Version() uint64                 { return 7002022 }
func (f *tunnelDriver) Hostname() string                { return "desthost" }
func (f *tunnelDriver) Capabilities() string            { return "<capabilities/>" }
func (f *tunnelDriver) NodeInfo() driver.NodeInfo       { return driver.NodeInfo{} }
func (f *tunnelDriver) DomainCapabilities(string, string, string, string) (string, error) {
	return "", nil
}
func (f *tunnelDriver) AcceptsURI(name string) error {
	if name == "qemu:///system" {
		return nil
	}
	return compat.Errorf(libvirt.ErrNoConnect, compat.FromNone, "%s", name)
}

func (f *tunnelDriver) MigratePrepareTunnel3(ctx context.Context, params []libvirt.TypedParam, cookie []byte, flags uint32, st io.ReadCloser) ([]byte, error) {
	if string(cookie) == "refuse" {
		return nil, compat.Errorf(libvirt.ErrOperationInvalid, compat.FromDomain, "domain 'demo' is already active")
	}
	go func() {
		if f.failWith != nil {
			// Fail after the first data, as a QEMU that broke off would.
			buf := make([]byte, 1)
			st.Read(buf)
			st.(driver.ErrorCloser).CloseWithError(f.failWith)
			f.got <- nil
			return
		}
		b, err := io.ReadAll(st)
		if err != nil {
			st.(driver.ErrorCloser).CloseWithError(err)
		} else {
			st.Close()
		}
		f.got <- b
	}()
	return append([]byte("prepared:"), cookie...), nil
}

func startDest(t *testing.T, drv *tunnelDriver) *client.Client {
	t.Helper()
	cfg := config.Default()
	cfg.UnixSockDir = t.TempDir()
	cfg.StateDir = t.TempDir()
	cfg.KeepaliveInterval = -1
	srv := server.New(cfg, drv, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := srv.Listen(false); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	nc, err := net.Dial("unix", filepath.Join(cfg.UnixSockDir, "libvirt-sock"))
	if err != nil {
		t.Fatal(err)
	}
	cl := client.New(nc)
	t.Cleanup(func() { cl.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := cl.Handshake(ctx, "qemu:///system"); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	return cl
}

func prepare(t *testing.T, cl *client.Client, cookie string) (*client.Stream, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var ret libvirt.DomainMigratePrepareTunnel3ParamsRet
	st, err := cl.CallStream(ctx, rpc.ProcDomainMigratePrepareTunnel3Params,
		&libvirt.DomainMigratePrepareTunnel3ParamsArgs{CookieIn: []byte(cookie), Flags: 7}, &ret)
	if err == nil && string(ret.CookieOut) != "prepared:"+cookie {
		t.Errorf("cookie out %q", ret.CookieOut)
	}
	return st, err
}

func TestHandshakeCallAndStream(t *testing.T) {
	drv := &tunnelDriver{got: make(chan []byte, 1)}
	cl := startDest(t, drv)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var host libvirt.ConnectGetHostnameRet
	if err := cl.Call(ctx, rpc.ProcConnectGetHostname, nil, &host); err != nil || host.Hostname != "desthost" {
		t.Fatalf("hostname %q: %v", host.Hostname, err)
	}
	st, err := prepare(t, cl, "c1")
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 5*rpc.InitialSize+123)
	for i := range data {
		data[i] = byte(i * 7)
	}
	if n, err := st.Write(data[:1000]); n != 1000 || err != nil {
		t.Fatalf("write: %d %v", n, err)
	}
	if _, err := st.Write(data[1000:]); err != nil {
		t.Fatal(err)
	}
	if err := st.Finish(ctx); err != nil {
		t.Fatalf("finish: %v", err)
	}
	if got := <-drv.got; !bytes.Equal(got, data) {
		t.Fatalf("destination got %d bytes, want %d", len(got), len(data))
	}
	// Calls still work after the stream.
	if err := cl.Call(ctx, rpc.ProcConnectGetHostname, nil, &host); err != nil {
		t.Fatal(err)
	}
}

func TestErrorReplyIsRemoteError(t *testing.T) {
	cl := startDest(t, &tunnelDriver{got: make(chan []byte, 1)})
	_, err := prepare(t, cl, "refuse")
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Code != int32(libvirt.ErrOperationInvalid) || ce.Domain != int32(compat.FromDomain) ||
		ce.Message != "Requested operation is not valid: domain 'demo' is already active" {
		t.Fatalf("got %#v", err)
	}
}

func TestPeerStreamErrorFailsWriter(t *testing.T) {
	drv := &tunnelDriver{got: make(chan []byte, 1),
		failWith: compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "migration in job: QEMU refused")}
	cl := startDest(t, drv)
	st, err := prepare(t, cl, "c")
	if err != nil {
		t.Fatal(err)
	}
	st.Write([]byte("x"))
	<-drv.got
	// The error arrives asynchronously; writes fail once it has.
	deadline := time.Now().Add(5 * time.Second)
	for st.Err() == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := st.Write([]byte("more")); err == nil || err.Error() != "operation failed: migration in job: QEMU refused" {
		t.Fatalf("write after the peer's error: %v", err)
	}
	if err := st.Finish(context.Background()); err == nil {
		t.Fatal("finish succeeded after the peer's error")
	}
}

func TestAbortReachesReader(t *testing.T) {
	drv := &tunnelDriver{got: make(chan []byte, 1)}
	cl := startDest(t, drv)
	st, err := prepare(t, cl, "c")
	if err != nil {
		t.Fatal(err)
	}
	st.Write([]byte("partial"))
	st.Abort(errors.New("source QEMU failed"))
	select {
	case <-drv.got:
	case <-time.After(5 * time.Second):
		t.Fatal("reader not released by the abort")
	}
}

// TestKeepalivePingAnswered: a peer that pings gets a pong.
func TestKeepalivePingAnswered(t *testing.T) {
	a, b := net.Pipe()
	cl := client.New(a)
	defer cl.Close()
	ping, _ := rpc.AppendPacket(nil, rpc.Header{Program: rpc.ProgramKeepalive, Version: 1, Procedure: rpc.KeepalivePing, Type: rpc.Message}, nil)
	go b.Write(ping)
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	p, err := rpc.ReadPacket(b)
	if err != nil || p.Program != rpc.ProgramKeepalive || p.Procedure != rpc.KeepalivePong || p.Type != rpc.Message {
		t.Fatalf("got %+v, %v", p, err)
	}
	b.Close()
}

func TestCallsFailWhenConnectionDies(t *testing.T) {
	a, b := net.Pipe()
	cl := client.New(a)
	defer cl.Close()
	done := make(chan error, 1)
	go func() { done <- cl.Call(context.Background(), rpc.ProcConnectGetHostname, nil, nil) }()
	rpc.ReadPacket(b) // the call arrives; no answer
	b.Close()
	select {
	case err := <-done:
		if !errors.Is(err, client.ErrClosed) {
			t.Fatalf("got %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("call not failed by the connection's end")
	}
}
