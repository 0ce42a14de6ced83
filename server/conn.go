package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver"
	"github.com/govirtd/govirtd/rpc"
	"github.com/govirtd/govirtd/xdr"
)

// Call is one CALL being served: what a handler knows about its caller.
type Call struct {
	Ctx    context.Context
	Conn   *Conn
	Header rpc.Header

	stream *Stream // opened by the handler (OpenStream)
	// encoded, when a handler sets it, is the reply body already in XDR:
	// it is sent instead of encoding the handler's return value.
	encoded []byte
}

// Conn is one client connection. One goroutine reads packets; each CALL runs
// in its own goroutine, at most max_client_requests at a time, and replies
// are written under one lock, in whatever order calls finish (virsh polls
// job info while a migration call is pending on the same connection).
type Conn struct {
	id       uint64
	srv      *Server
	nc       net.Conn
	readOnly bool
	listener string // which socket it came in on, for logs
	log      *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc

	writeMu sync.Mutex

	inflight chan struct{} // semaphore: max_client_requests
	// callStarted wakes the keepalive loop when a call goes in flight
	// (waitingClientPing).
	callStarted chan struct{}
	calls       sync.WaitGroup
	work        chan *rpc.Packet // calls for idle workers
	workers     int              // workers started (only the reader touches it)

	opened    atomic.Bool // CONNECT_OPEN succeeded
	lastRecv  atomic.Int64
	keepalive atomic.Bool // the client asked for PROGRAM_KEEPALIVE

	streamsMu     sync.Mutex
	streams       map[streamKey]*Stream
	closedStreams []streamKey // recently ended, to drop their late data quietly
	streamsClosed bool        // the connection is closing: no new streams

	events       eventRegistry
	secretEvents objectEventRegistry
	// netEvents are its network event callbacks (handlers_network_events.go).
	netEvents objectEventRegistry
	// poolEvents are its storage pool event callbacks.
	poolEvents objectEventRegistry
	eventQ     chan queuedEvent

	closeOnce sync.Once
}

func newConn(srv *Server, nc net.Conn, readOnly bool, listener string, id uint64) *Conn {
	ctx, cancel := context.WithCancel(srv.ctx)
	c := &Conn{
		id:          id,
		srv:         srv,
		nc:          nc,
		readOnly:    readOnly,
		listener:    listener,
		ctx:         ctx,
		cancel:      cancel,
		inflight:    make(chan struct{}, srv.cfg.MaxClientRequests),
		callStarted: make(chan struct{}, 1),
		work:        make(chan *rpc.Packet),
		eventQ:      make(chan queuedEvent, eventQueueLen),
	}
	c.log = srv.log.With("conn", id, "listener", listener, "peer", peerName(nc))
	c.lastRecv.Store(time.Now().UnixNano())
	return c
}

func peerName(nc net.Conn) string {
	if a := nc.RemoteAddr(); a != nil && a.String() != "" && a.String() != "@" {
		return a.String()
	}
	return "local"
}

// ReadOnly reports whether the client came in on the read-only socket.
func (c *Conn) ReadOnly() bool { return c.readOnly }

// serve runs the connection until the peer goes away or the server stops.
func (c *Conn) serve() {
	c.log.Debug("client connected")
	defer c.close("")
	go c.keepaliveLoop()
	go c.eventLoop()
	br := bufio.NewReaderSize(c.nc, 16*1024) // calls are small; a bigger one is read past the buffer
	for {
		p, err := rpc.ReadPacket(br)
		if err != nil {
			switch {
			case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
				c.log.Debug("client disconnected")
			case errors.Is(err, rpc.ErrTooLarge), errors.Is(err, rpc.ErrTooSmall):
				c.log.Warn("closing connection: malformed packet", "err", err)
			default:
				if c.ctx.Err() == nil {
					c.log.Info("closing connection: read failed", "err", err)
				}
			}
			return
		}
		c.lastRecv.Store(time.Now().UnixNano())
		if !c.handlePacket(p) {
			return
		}
	}
}

// handlePacket routes one packet. It returns false when the connection must
// be closed.
func (c *Conn) handlePacket(p *rpc.Packet) bool {
	switch p.Program {
	case rpc.ProgramKeepalive:
		return c.handleKeepalive(p)
	case rpc.ProgramRemote, rpc.ProgramQEMU:
	default:
		if p.Type == rpc.Call {
			c.replyError(p.Header, compat.Errorf(libvirt.ErrRPC, compat.FromRPC, "Cannot find program %d version %d", p.Program, p.Version))
		} else {
			c.log.Info("dropping message for unknown program", "program", fmt.Sprintf("%#x", p.Program), "type", p.Type)
		}
		return true
	}
	if p.Version != rpc.ProtocolVersion {
		if p.Type == rpc.Call {
			c.replyError(p.Header, compat.Errorf(libvirt.ErrRPC, compat.FromRPC, "Cannot find program %d version %d", p.Program, p.Version))
		}
		return true
	}
	switch p.Type {
	case rpc.Call:
	case rpc.Stream, rpc.StreamHole:
		c.handleStream(p)
		return true
	case rpc.CallWithFDs:
		// File descriptor passing is not implemented; the fds (if any) were
		// never received, so answer the call instead of misreading its body.
		c.replyError(p.Header, compat.Errorf(libvirt.ErrRPC, compat.FromRPC, "file descriptor passing is not supported"))
		return true
	default:
		c.log.Info("dropping unexpected message", "type", p.Type, "proc", p.Procedure)
		return true
	}
	if p.Status != rpc.OK {
		c.replyError(p.Header, compat.Errorf(libvirt.ErrRPC, compat.FromRPC, "Unexpected message status %d", p.Status))
		return true
	}
	if p.Program == rpc.ProgramRemote && inlineProcs[p.Procedure] {
		// Answered from memory in microseconds: run it here. Handing it to
		// a worker costs a goroutine switch per call, a sixth of a simple
		// call's round trip on one connection and a longer run queue
		// under load.
		c.calls.Add(1)
		c.dispatch(p)
		c.calls.Done()
		return true
	}
	// Block reading while max_client_requests calls are in flight: the client
	// waits, as with libvirtd, instead of the daemon queueing without bound.
	select {
	case c.inflight <- struct{}{}:
	case <-c.ctx.Done():
		return false
	}
	select {
	case c.callStarted <- struct{}{}:
	default: // the loop has a wake-up pending already
	}
	c.calls.Add(1)
	// Calls run on per-connection workers that outlive one call: a fresh
	// goroutine per call spent ~10% of the daemon's CPU growing its stack
	// in a profile. An idle worker takes the call; else a new one starts,
	// up to max_client_requests of them (the semaphore above guarantees a
	// busy one frees up).
	select {
	case c.work <- p:
	default:
		if c.workers < cap(c.inflight) {
			c.workers++
			go c.worker(p)
		} else {
			select {
			case c.work <- p:
			case <-c.ctx.Done():
				<-c.inflight
				c.calls.Done()
				return false
			}
		}
	}
	return true
}

// worker runs calls for the connection until it closes.
func (c *Conn) worker(p *rpc.Packet) {
	for {
		c.dispatch(p)
		<-c.inflight
		c.calls.Done()
		select {
		case p = <-c.work:
		case <-c.ctx.Done():
			return
		}
	}
}

// logCall writes one line of the call log. log_rpc_calls asks for it by
// itself, so it is written whatever log_level says: the record goes to the
// handler directly, past the logger's level check (libvirtd's default
// level, warnings, would otherwise drop every line).
func (c *Conn) logCall(p *rpc.Packet, took time.Duration, err error) {
	r := slog.NewRecord(time.Now(), slog.LevelInfo, "rpc call", 0)
	r.Add("proc", procName(p.Header), "serial", p.Serial, "duration", took)
	if err != nil {
		r.Add("err", err.Error())
	}
	_ = c.log.Handler().Handle(c.ctx, r)
}

// dispatch runs one CALL and sends its reply.
func (c *Conn) dispatch(p *rpc.Packet) {
	var start time.Time
	if c.srv.cfg.LogRPCCalls {
		start = time.Now() // only the call log needs it: no clock read per call otherwise
	}
	call := &Call{Ctx: driver.WithConnID(c.ctx, c.id), Conn: c, Header: p.Header}
	ret, err := c.invoke(call, p)
	if c.srv.cfg.LogRPCCalls {
		c.logCall(p, time.Since(start), err)
	}
	var msg []byte
	if err == nil {
		msg, err = c.encodeReply(p.Header, call, ret)
	}
	if err != nil {
		if call.stream != nil {
			call.stream.discard()
		}
		c.replyError(p.Header, err)
		return
	}
	c.write(msg)
	putMsgBuf(msg)
	if call.stream != nil {
		call.stream.replySent()
	}
}

// encodeReply encodes a successful call's reply straight into a pooled
// message buffer after room for the frame (no intermediate body, no second
// copy). The error, when encoding fails, is the one to send instead.
func (c *Conn) encodeReply(ch rpc.Header, call *Call, ret any) ([]byte, error) {
	buf := getMsgBuf()
	var msg []byte
	var err error
	if call.encoded != nil {
		msg = append(buf[:rpc.LenSize+rpc.HeaderSize], call.encoded...)
	} else {
		msg, err = xdr.Append(buf[:rpc.LenSize+rpc.HeaderSize], ret)
	}
	if err != nil {
		putMsgBuf(msg)
		c.log.Error("encode reply", "proc", ch.Procedure, "err", err)
		return nil, compat.Errorf(libvirt.ErrRPC, compat.FromRPC, "Unable to encode message payload")
	}
	h := ch
	h.Type, h.Status = rpc.Reply, rpc.OK
	if err := rpc.PutFrame(msg, h); err != nil {
		putMsgBuf(msg)
		c.log.Error("reply too large", "proc", ch.Procedure, "err", err)
		return nil, compat.Errorf(libvirt.ErrRPC, compat.FromRPC, "message payload is too large")
	}
	return msg, nil
}

// invoke checks and runs the handler; a panic becomes an internal error for
// this call only.
func (c *Conn) invoke(call *Call, p *rpc.Packet) (ret any, err error) {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("handler panicked", "proc", procName(p.Header), "panic", r, "stack", string(debug.Stack()))
			ret, err = nil, compat.Errorf(libvirt.ErrInternalError, compat.FromNone, "unexpected failure in %s", p.Procedure.API())
		}
	}()
	if p.Program == rpc.ProgramQEMU {
		return c.invokeQEMU(call, p)
	}
	if !p.Procedure.Known() {
		return nil, compat.Errorf(libvirt.ErrRPC, compat.FromRPC, "unknown procedure: %d", p.Procedure)
	}
	if !c.opened.Load() && !allowedBeforeOpen[p.Procedure] {
		return nil, compat.Errorf(libvirt.ErrInternalError, compat.FromNone, "connection not open")
	}
	if c.readOnly && !compat.ReadOnlyAllowed(p.Procedure.String()) {
		return nil, compat.ReadOnly("read only access prevents " + p.Procedure.API())
	}
	h, ok := c.srv.table.lookup(p.Procedure)
	if !ok {
		return nil, compat.NoSupport(p.Procedure.API())
	}
	args, err := h.decode(p.Body)
	if err != nil {
		c.log.Info("bad call arguments", "proc", p.Procedure, "err", err)
		return nil, compat.Errorf(libvirt.ErrRPC, compat.FromRPC, "Unable to decode message payload")
	}
	return h.invoke(call, args)
}

// invokeQEMU runs a call of the QEMU program, whose procedure numbers
// are its own (qemu_protocol.x). Its calls all act on domains: none is
// allowed before CONNECT_OPEN or on a read-only connection, where
// libvirt's virDomainQemu* APIs refuse them.
func (c *Conn) invokeQEMU(call *Call, p *rpc.Packet) (any, error) {
	h, ok := c.srv.qemuTable.lookup(p.Procedure)
	if !ok {
		return nil, compat.Errorf(libvirt.ErrRPC, compat.FromRPC, "unknown procedure: %d", p.Procedure)
	}
	if !c.opened.Load() {
		return nil, compat.Errorf(libvirt.ErrInternalError, compat.FromNone, "connection not open")
	}
	if c.readOnly {
		return nil, compat.ReadOnly("read only access prevents " + qemuProcAPI[p.Procedure])
	}
	args, err := h.decode(p.Body)
	if err != nil {
		c.log.Info("bad call arguments", "program", "qemu", "proc", uint32(p.Procedure), "err", err)
		return nil, compat.Errorf(libvirt.ErrRPC, compat.FromRPC, "Unable to decode message payload")
	}
	return h.invoke(call, args)
}

// allowedBeforeOpen are the procedures a client may call before
// CONNECT_OPEN (libvirt's handshake asks for keepalive support first).
var allowedBeforeOpen = map[rpc.Procedure]bool{
	rpc.ProcAuthList:               true,
	rpc.ProcConnectOpen:            true,
	rpc.ProcConnectSupportsFeature: true,
	rpc.ProcConnectClose:           true,
}

// replyError sends a remote_error reply for a CALL.
func (c *Conn) replyError(h rpc.Header, err error) {
	le := compat.As(err)
	if le.Code == libvirt.ErrInternalError && le.Err != nil {
		c.log.Error("call failed", "proc", h.Procedure, "err", err)
	}
	body, mErr := xdr.Marshal(remoteError(le))
	if mErr != nil {
		c.log.Error("encode error reply", "err", mErr)
		return
	}
	h.Type, h.Status = rpc.Reply, rpc.Error
	c.send(h, body)
}

// send writes one message.
func (c *Conn) send(h rpc.Header, body []byte) {
	buf := getMsgBuf()
	msg := append(buf[:rpc.LenSize+rpc.HeaderSize], body...)
	defer putMsgBuf(msg)
	if err := rpc.PutFrame(msg, h); err != nil {
		c.log.Error("reply too large", "proc", h.Procedure, "err", err)
		if h.Type == rpc.Reply && h.Status == rpc.OK {
			c.replyError(h, compat.Errorf(libvirt.ErrRPC, compat.FromRPC, "message payload is too large"))
		}
		return
	}
	c.write(msg)
}

// write sends one whole message with one write. Writes are serialized; a
// failed write closes the connection (the reader then ends).
func (c *Conn) write(msg []byte) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	_ = c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := c.nc.Write(msg); err != nil {
		c.log.Info("write failed", "err", err)
		c.nc.Close()
	}
}

// Message buffers are reused across calls and connections: replies are
// encoded into them and written at once. Big ones (a list of thousands of
// domains) are not kept, so the pool stays small.
const maxPooledMsg = 64 << 10

var msgBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func getMsgBuf() []byte { return *(msgBufs.Get().(*[]byte)) }

func putMsgBuf(b []byte) {
	if cap(b) > maxPooledMsg {
		return
	}
	b = b[:0]
	msgBufs.Put(&b)
}

// writeTimeout bounds how long a client that stopped reading can hold a
// reply: after it, the connection is dropped rather than pinning memory.
const writeTimeout = 60 * time.Second

// close ends the connection and waits for its calls. reason is logged.
func (c *Conn) close(reason string) {
	c.closeOnce.Do(func() {
		if reason != "" {
			c.log.Info("closing connection", "reason", reason)
		}
		c.cancel()
		c.nc.Close()
		// Readers of this client's streams would otherwise wait forever.
		c.abortStreams()
		c.calls.Wait()
		c.srv.forget(c)
		// Work this client started and never finished (a managed
		// migration) is the driver's to clean up now.
		c.srv.drv.ConnectionClosed(c.id)
	})
}
