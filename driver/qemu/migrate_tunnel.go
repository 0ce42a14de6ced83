package qemu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/compat/migparams"
	"github.com/govirtd/govirtd/driver"
	"github.com/govirtd/govirtd/driver/qemu/qmp"
	"github.com/govirtd/govirtd/rpc"
	"github.com/govirtd/govirtd/rpc/client"
)

// Tunnelled migration (virsh migrate --p2p --tunnelled): QEMU's migration
// stream travels inside the libvirt RPC connection between the daemons
// instead of a connection of its own. The source daemon reads what its
// QEMU sends and forwards it as stream data of the PREPARE_TUNNEL3 call;
// the destination daemon feeds that data to its incoming QEMU. Each daemon
// talks to its QEMU over a unix socket in the domain's run directory
// (libvirt uses a pipe and fd: URIs; a socket needs no fd passing).

// Socket names in the domain's run directory.
const (
	tunnelInSocket  = "migrate-in.sock"
	tunnelOutSocket = "migrate-out.sock"
)

// tunnelDrainTimeout bounds how long the source waits, after QEMU reported
// the migration complete, for the tunnel to carry the rest of the data and
// the destination to confirm it.
var tunnelDrainTimeout = 60 * time.Second

// MigratePrepareTunnel3 implements driver.Migration: Prepare as for a
// direct migration, but the incoming QEMU reads from stream.
func (d *Driver) MigratePrepareTunnel3(ctx context.Context, tp []libvirt.TypedParam, cookieIn []byte, flags uint32, stream io.ReadCloser) ([]byte, error) {
	if stream == nil {
		return nil, compat.Errorf(libvirt.ErrInvalidArg, compat.FromQEMU, "tunnelled migration requires a stream")
	}
	cookie, _, err := d.prepare(ctx, tp, cookieIn, flags, stream)
	return cookie, err
}

// startTunnelIncoming makes the incoming QEMU listen on a unix socket and
// copies the stream into it. The stream is closed when it ends or the copy
// fails, telling the source whether everything reached QEMU.
func (d *Driver) startTunnelIncoming(ctx context.Context, dom *domain, mon *qmp.Monitor, stream io.ReadCloser) error {
	dom.mu.Lock()
	path := filepath.Join(dom.runDir, tunnelInSocket)
	dom.mu.Unlock()
	os.Remove(path)
	if err := d.startIncoming(ctx, dom, mon, "unix:"+path, true, migparams.Tuning{}, false); err != nil {
		return err
	}
	// QEMU listens once migrate-incoming returned.
	var nd net.Dialer
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := nd.DialContext(dctx, "unix", path)
	if err != nil {
		return compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "migration in job: cannot connect to the incoming QEMU: %v", err)
	}
	go func() {
		_, err := copyChunks(conn, stream)
		conn.Close()
		if err != nil {
			d.log.Warn("tunnelled migration stream to QEMU failed", "domain", dom.name, "err", err)
			closeStream(stream, compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "migration in job: tunnelled stream: %v", err))
			return
		}
		closeStream(stream, nil)
	}()
	return nil
}

// closeStream closes a stream, reporting err to its writer if it can.
func closeStream(s io.ReadCloser, err error) {
	if ec, ok := s.(driver.ErrorCloser); ok && err != nil {
		ec.CloseWithError(err)
		return
	}
	s.Close()
}

// copyChunks copies src to dst in reads of at most one stream chunk (so
// each read becomes one stream message), until src ends (nil error).
func copyChunks(dst io.Writer, src io.Reader) (int64, error) {
	buf := make([]byte, rpc.InitialSize)
	var total int64
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return total, werr
			}
			total += int64(n)
		}
		if errors.Is(err, io.EOF) {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// sourceTunnel is the source's side of a tunnelled migration: its own RPC
// connection to the destination (go-libvirt, used for the rest of p2p, has
// no streams), the stream of the PREPARE_TUNNEL3 call, and the socket its
// QEMU sends to.
type sourceTunnel struct {
	cl     *client.Client
	stream *client.Stream
	ln     net.Listener
	path   string

	relayed chan error // the relay's result: nil once QEMU's data ended

	mu   sync.Mutex
	qemu net.Conn // QEMU's connection, once accepted
}

// openTunnel connects to the destination daemon at uri and does the client
// handshake.
func openTunnel(ctx context.Context, uri string) (*sourceTunnel, error) {
	nc, err := dialPeerConn(ctx, uri)
	if err != nil {
		return nil, err
	}
	cl := client.New(nc)
	hctx, cancel := context.WithTimeout(ctx, peerDialTimeout)
	defer cancel()
	// libvirt's remote driver opens the URI without transport and host.
	if err := cl.Handshake(hctx, string(libvirt.QEMUSystem)); err != nil {
		cl.Close()
		return nil, relayError(err)
	}
	return &sourceTunnel{cl: cl}, nil
}

// prepare calls PREPARE_TUNNEL3_PARAMS on the destination; on success the
// stream is open and the destination's QEMU waits for data.
func (t *sourceTunnel) prepare(ctx context.Context, params []libvirt.TypedParam, cookie []byte, flags uint32) ([]byte, error) {
	var ret libvirt.DomainMigratePrepareTunnel3ParamsRet
	st, err := t.cl.CallStream(ctx, rpc.ProcDomainMigratePrepareTunnel3Params,
		&libvirt.DomainMigratePrepareTunnel3ParamsArgs{Params: params, CookieIn: cookie, Flags: flags}, &ret)
	if err != nil {
		return nil, relayError(err)
	}
	t.stream = st
	return ret.CookieOut, nil
}

// listen opens the socket the source QEMU migrates to and starts relaying
// its first connection into the stream. It returns QEMU's migration URI.
func (t *sourceTunnel) listen(dom *domain) (string, error) {
	dom.mu.Lock()
	dir := dom.runDir
	dom.mu.Unlock()
	if dir == "" {
		return "", errNotRunning()
	}
	t.path = filepath.Join(dir, tunnelOutSocket)
	os.Remove(t.path)
	ln, err := net.Listen("unix", t.path)
	if err != nil {
		return "", compat.Errorf(libvirt.ErrSystemError, compat.FromQEMU, "cannot listen for the tunnelled migration: %v", err)
	}
	t.ln = ln
	t.relayed = make(chan error, 1)
	go func() { t.relayed <- t.relay() }()
	return "unix:" + t.path, nil
}

// relay forwards QEMU's migration data into the stream. Only the first
// connection is taken: QEMU makes exactly one.
func (t *sourceTunnel) relay() error {
	conn, err := t.ln.Accept()
	t.ln.Close()
	os.Remove(t.path)
	if err != nil {
		return fmt.Errorf("accept QEMU's migration connection: %w", err)
	}
	t.mu.Lock()
	t.qemu = conn
	t.mu.Unlock()
	defer conn.Close()
	if _, err := copyChunks(t.stream, conn); err != nil {
		// Closing QEMU's end makes its migration fail instead of waiting.
		return fmt.Errorf("relay migration data: %w", err)
	}
	return nil
}

// complete ends a migration QEMU reported complete: the rest of the data
// goes through, the stream is ended, and the destination must confirm it
// received everything.
func (t *sourceTunnel) complete(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, tunnelDrainTimeout)
	defer cancel()
	select {
	case err := <-t.relayed:
		if err != nil {
			return t.failure(err)
		}
	case <-ctx.Done():
		t.abort(nil)
		return compat.Errorf(libvirt.ErrOperationTimeout, compat.FromQEMU, "tunnelled migration data did not drain")
	}
	if err := t.stream.Finish(ctx); err != nil {
		return t.failure(err)
	}
	return nil
}

// abort ends a failed migration's stream, and returns the error to report:
// the destination's, when it broke the stream first (QEMU then only saw
// its connection close), else err.
func (t *sourceTunnel) abort(err error) error {
	if t.stream == nil {
		return err
	}
	peerErr := t.stream.Err()
	t.stream.Abort(err)
	t.stop()
	if peerErr != nil {
		return relayError(peerErr)
	}
	return err
}

func (t *sourceTunnel) failure(err error) error {
	if perr := t.stream.Err(); perr != nil {
		err = perr
	}
	t.stream.Abort(err)
	t.stop()
	return relayError(err)
}

// stop ends the relay: the listener and QEMU's connection close.
func (t *sourceTunnel) stop() {
	if t.ln != nil {
		t.ln.Close()
	}
	t.mu.Lock()
	if t.qemu != nil {
		t.qemu.Close()
	}
	t.mu.Unlock()
}

// close ends the tunnel connection; the destination's incoming job is tied
// to it, so this comes after Finish.
func (t *sourceTunnel) close() {
	t.stop()
	t.cl.Close()
}
