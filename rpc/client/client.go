// Package client is a minimal libvirt RPC client for what go-libvirt cannot
// do: a call that opens a stream, and sending the stream's data (the source
// side of a tunnelled migration, PREPARE_TUNNEL3). It does the handshake a
// libvirt client does, serves calls concurrently, answers keepalive pings,
// and sends outgoing streams only.
package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/rpc"
	"github.com/govirtd/govirtd/xdr"
)

// writeTimeout bounds one write: a peer that stops reading for this long
// (its stream buffers full and nothing draining them) is given up on.
var writeTimeout = 2 * time.Minute

// Error is an error the other daemon replied with (its remote_error).
type Error struct {
	Code    int32
	Domain  int32
	Message string
}

func (e *Error) Error() string { return e.Message }

// ErrClosed is returned for calls on, or streams of, a closed client.
var ErrClosed = errors.New("libvirt RPC connection closed")

// Client is one connection to a libvirt daemon.
type Client struct {
	nc net.Conn

	wmu sync.Mutex
	bw  *bufio.Writer

	mu      sync.Mutex
	serial  uint32
	calls   map[uint32]chan *rpc.Packet
	streams map[uint32]*Stream
	err     error // why the connection ended

	done chan struct{} // closed when the reader ends
}

// New starts a client on an established connection. Call Handshake before
// anything else.
func New(nc net.Conn) *Client {
	c := &Client{
		nc:      nc,
		bw:      bufio.NewWriterSize(nc, rpc.InitialSize+rpc.LenSize+rpc.HeaderSize),
		calls:   map[uint32]chan *rpc.Packet{},
		streams: map[uint32]*Stream{},
		done:    make(chan struct{}),
	}
	go c.readLoop()
	return c
}

// Handshake opens the connection as libvirt's remote driver does (protocol
// facts §2): AUTH_LIST (only "none" is supported), the keepalive feature
// probe, then CONNECT_OPEN of uri (libvirt sends the URI stripped of
// transport and host, e.g. "qemu:///system"). Keepalive is not started:
// the peer then sends no pings, though they would be answered.
func (c *Client) Handshake(ctx context.Context, uri string) error {
	var auth libvirt.AuthListRet
	if err := c.Call(ctx, rpc.ProcAuthList, nil, &auth); err != nil {
		return err
	}
	none := false
	for _, a := range auth.Types {
		none = none || a == 0
	}
	if !none {
		return fmt.Errorf("server requires authentication (%v), which this client does not support", auth.Types)
	}
	var feat libvirt.ConnectSupportsFeatureRet
	if err := c.Call(ctx, rpc.ProcConnectSupportsFeature, &libvirt.ConnectSupportsFeatureArgs{Feature: 10}, &feat); err != nil {
		return err
	}
	return c.Call(ctx, rpc.ProcConnectOpen, &libvirt.ConnectOpenArgs{Name: libvirt.OptString{uri}}, nil)
}

// Call makes one call of the remote program and decodes its reply into ret
// (nil args or ret: void). An error reply is an *Error.
func (c *Client) Call(ctx context.Context, proc rpc.Procedure, args, ret any) error {
	_, err := c.call(ctx, proc, args, ret, false)
	return err
}

// CallStream makes a call that opens a stream from this side (the stream
// is bound to the call's procedure and serial), and returns the stream
// once the reply says the peer is ready for the data.
func (c *Client) CallStream(ctx context.Context, proc rpc.Procedure, args, ret any) (*Stream, error) {
	return c.call(ctx, proc, args, ret, true)
}

func (c *Client) call(ctx context.Context, proc rpc.Procedure, args, ret any, stream bool) (*Stream, error) {
	var body []byte
	if args != nil {
		var err error
		if body, err = xdr.Marshal(args); err != nil {
			return nil, fmt.Errorf("encode %s arguments: %w", proc, err)
		}
	}
	reply := make(chan *rpc.Packet, 1)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return nil, err
	}
	serial := c.serial
	c.serial++
	c.calls[serial] = reply
	var st *Stream
	if stream {
		// Registered before the call goes out: the peer may end the stream
		// (an error) right after its reply.
		st = &Stream{c: c, proc: proc, serial: serial, ended: make(chan struct{})}
		c.streams[serial] = st
	}
	c.mu.Unlock()
	forget := func() {
		c.mu.Lock()
		delete(c.calls, serial)
		if st != nil {
			delete(c.streams, serial)
		}
		c.mu.Unlock()
	}
	h := rpc.Header{Program: rpc.ProgramRemote, Version: rpc.ProtocolVersion, Procedure: proc, Type: rpc.Call, Serial: serial, Status: rpc.OK}
	if err := c.send(h, body); err != nil {
		forget()
		return nil, err
	}
	var p *rpc.Packet
	select {
	case p = <-reply:
	case <-c.done:
		forget()
		return nil, c.closedErr()
	case <-ctx.Done():
		forget()
		return nil, fmt.Errorf("%s: %w", proc, ctx.Err())
	}
	if p.Status == rpc.Error {
		if st != nil {
			forget()
		}
		return nil, decodeError(p.Body)
	}
	if p.Status != rpc.OK {
		forget()
		return nil, fmt.Errorf("%s: unexpected reply status %s", proc, p.Status)
	}
	if ret != nil {
		if err := xdr.Unmarshal(p.Body, ret); err != nil {
			forget()
			return nil, fmt.Errorf("decode %s reply: %w", proc, err)
		}
	}
	return st, nil
}

// Close says goodbye (CONNECT_CLOSE, briefly waited for) and closes the
// connection.
func (c *Client) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.Call(ctx, rpc.ProcConnectClose, nil, nil)
	c.fail(ErrClosed)
	err := c.nc.Close()
	<-c.done
	return err
}

func (c *Client) send(h rpc.Header, body []byte) error {
	buf, err := rpc.AppendPacket(nil, h, body)
	if err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err = c.bw.Write(buf); err == nil {
		err = c.bw.Flush()
	}
	if err != nil {
		err = fmt.Errorf("send %s %s: %w", h.Procedure, h.Type, err)
		c.fail(err)
		c.nc.Close()
	}
	return err
}

func (c *Client) readLoop() {
	defer close(c.done)
	br := bufio.NewReaderSize(c.nc, 64*1024)
	for {
		p, err := rpc.ReadPacket(br)
		if err != nil {
			c.fail(fmt.Errorf("%w: %v", ErrClosed, err))
			c.nc.Close()
			return
		}
		c.dispatch(p)
	}
}

// dispatch routes one message from the peer. Unexpected messages (events,
// data of unknown streams, late replies to abandoned calls) are dropped.
func (c *Client) dispatch(p *rpc.Packet) {
	if p.Program == rpc.ProgramKeepalive {
		if p.Type == rpc.Message && p.Procedure == rpc.KeepalivePing {
			// Answered from its own goroutine: a blocked writer (a stream
			// write the peer is slow to take) must not stop the reader.
			go c.send(rpc.Header{Program: rpc.ProgramKeepalive, Version: rpc.KeepaliveVersion, Procedure: rpc.KeepalivePong, Type: rpc.Message}, nil)
		}
		return
	}
	if p.Program != rpc.ProgramRemote {
		return
	}
	switch p.Type {
	case rpc.Reply:
		c.mu.Lock()
		ch := c.calls[p.Serial]
		delete(c.calls, p.Serial)
		c.mu.Unlock()
		if ch != nil {
			ch <- p
		}
	case rpc.Stream:
		c.mu.Lock()
		st := c.streams[p.Serial]
		if st != nil && st.proc == p.Procedure && p.Status != rpc.Continue {
			delete(c.streams, p.Serial)
		}
		c.mu.Unlock()
		if st == nil || st.proc != p.Procedure {
			return
		}
		switch p.Status {
		case rpc.OK:
			st.end(nil)
		case rpc.Error:
			st.end(decodeError(p.Body))
		}
		// CONTINUE: this client sends streams only.
	}
}

// fail records why the connection ended and ends its streams.
func (c *Client) fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	streams := c.streams
	c.streams = map[uint32]*Stream{}
	c.mu.Unlock()
	for _, st := range streams {
		st.end(err)
	}
}

func (c *Client) closedErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	return ErrClosed
}

func decodeError(body []byte) error {
	var re rpc.RemoteError
	if err := xdr.Unmarshal(body, &re); err != nil {
		return fmt.Errorf("undecodable error reply: %w", err)
	}
	e := &Error{Code: re.Code, Domain: re.Domain}
	if len(re.Message) == 1 {
		e.Message = re.Message[0]
	}
	return e
}

// Stream is an outgoing stream: data sent as STREAM CONTINUE messages of at
// most 64 KiB, ended by Finish (STREAM OK, confirmed by the peer) or Abort
// (STREAM ERROR).
type Stream struct {
	c      *Client
	proc   rpc.Procedure
	serial uint32

	mu      sync.Mutex
	sentEnd bool
	peerErr error
	ended   chan struct{} // closed when the peer ended the stream
}

// end records the peer's end of the stream (nil: STREAM OK).
func (s *Stream) end(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.ended:
		return
	default:
	}
	s.peerErr = err
	close(s.ended)
}

func (s *Stream) header(status rpc.Status) rpc.Header {
	return rpc.Header{Program: rpc.ProgramRemote, Version: rpc.ProtocolVersion, Procedure: s.proc, Type: rpc.Stream, Serial: s.serial, Status: status}
}

// Err is the peer's error if it ended the stream, else nil.
func (s *Stream) Err() error {
	select {
	case <-s.ended:
	default:
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.peerErr == nil {
		return errors.New("the peer ended the stream before its end")
	}
	return s.peerErr
}

// Write sends p as stream data. It fails once the peer ended the stream.
func (s *Stream) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if err := s.Err(); err != nil {
			return n, err
		}
		chunk := p
		if len(chunk) > rpc.InitialSize {
			chunk = chunk[:rpc.InitialSize]
		}
		if err := s.c.send(s.header(rpc.Continue), chunk); err != nil {
			return n, err
		}
		n += len(chunk)
		p = p[len(chunk):]
	}
	return n, nil
}

// Finish ends the stream (STREAM OK) and waits for the peer to confirm it
// took everything: nil on its STREAM OK, its error on STREAM ERROR.
func (s *Stream) Finish(ctx context.Context) error {
	if err := s.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	sent := s.sentEnd
	s.sentEnd = true
	s.mu.Unlock()
	if sent {
		return errors.New("stream already ended")
	}
	if err := s.c.send(s.header(rpc.OK), nil); err != nil {
		return err
	}
	select {
	case <-s.ended:
	case <-ctx.Done():
		return fmt.Errorf("waiting for the end of the stream to be confirmed: %w", ctx.Err())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peerErr
}

// Abort ends the stream with a STREAM ERROR carrying err. The peer's
// confirmation is not waited for.
func (s *Stream) Abort(err error) {
	s.mu.Lock()
	sent := s.sentEnd
	s.sentEnd = true
	s.mu.Unlock()
	select {
	case <-s.ended:
		return // the peer already ended it
	default:
	}
	if sent {
		return
	}
	msg := "stream aborted"
	if err != nil {
		msg = err.Error()
	}
	re := rpc.RemoteError{Code: int32(libvirt.ErrOperationAborted), Domain: 10, Message: libvirt.OptString{msg}, Level: 2, Int1: -1, Int2: -1}
	var ce *Error
	if errors.As(err, &ce) {
		re.Code, re.Domain = ce.Code, ce.Domain
	}
	body, mErr := xdr.Marshal(&re)
	if mErr != nil {
		body = nil
	}
	_ = s.c.send(s.header(rpc.Error), body)
	s.c.mu.Lock()
	delete(s.c.streams, s.serial)
	s.c.mu.Unlock()
}
