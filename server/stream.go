package server

import (
	"errors"
	"io"
	"sync"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/rpc"
	"github.com/govirtd/govirtd/xdr"
)

// Incoming RPC streams: data a client sends after the reply to the call
// that opened the stream (tunnelled migration's PREPARE_TUNNEL3), as STREAM
// messages carrying that call's procedure and serial. CONTINUE carries data,
// OK ends the stream, ERROR aborts it; the server confirms the end with an
// empty STREAM OK once the driver has consumed everything, or reports the
// driver's failure with a STREAM ERROR (libvirt's remote_daemon_stream.c).

const (
	// maxStreamsPerConn bounds the streams one connection may have open: a
	// client must not make the daemon keep state without bound. libvirt
	// clients open one per tunnelled migration.
	maxStreamsPerConn = 8
	// streamBufferBytes is how much received data a stream holds before
	// the connection's reader stops reading (one packet is always taken, so
	// a maximal 32 MiB packet still fits). libvirt throttles the same way,
	// by not reading from a client whose stream data is still queued.
	streamBufferBytes = 4 << 20
	// recentlyClosedStreams is how many ended streams a connection
	// remembers, so that data a client keeps sending after the server gave
	// up on its stream is dropped quietly rather than logged per packet.
	recentlyClosedStreams = 16
)

type streamKey struct {
	proc   rpc.Procedure
	serial uint32
}

// Stream is an incoming stream bound to one call. It is an io.ReadCloser:
// Read returns the client's data in order, then io.EOF once the client
// ended the stream, or an error if the client aborted it or the connection
// went away. Close (or CloseWithError) tells the client the outcome.
type Stream struct {
	c   *Conn
	key streamKey

	// sparse: the client may send holes (STREAM_HOLE), as libvirt allows
	// only for streams opened with a sparse flag.
	sparse bool
	// outgoing: the server sends data on this stream (see stream_send.go).
	outgoing bool
	// duplex: an outgoing stream that also carries the client's data (a
	// console).
	duplex bool

	mu      sync.Mutex
	queue   []chunk // received, not yet read
	cur     chunk   // the part of the first chunk not yet read
	queued  int     // bytes in queue and cur
	eof     bool    // the client sent STREAM OK
	err     error   // the client aborted, or the connection closed
	done    bool    // Close was called or the stream was discarded
	replied bool    // the opening call's reply went out
	// repliedCh is closed when the reply went out: an outgoing stream's
	// data must follow it.
	repliedCh chan struct{}
	// sendMu orders an outgoing stream's messages with its end: endSent
	// is set, under it, once the last message went out.
	sendMu      sync.Mutex
	endSent     bool
	repliedOnce sync.Once
	// pendingEnd is the end-of-stream message waiting for the reply to be
	// sent: the client must see the call's reply before the stream's end.
	pendingEnd *streamEnd

	readable chan struct{} // cap 1: data, end or error arrived
	writable chan struct{} // cap 1: the reader made room
}

// chunk is one piece of a stream: data, or a hole of hole bytes.
type chunk struct {
	data []byte
	hole int64
}

func (ch chunk) empty() bool { return len(ch.data) == 0 && ch.hole == 0 }

// holeCost is what a queued hole counts against streamBufferBytes, so that
// a client sending only holes is throttled too.
const holeCost = 64

type streamEnd struct {
	status rpc.Status
	body   []byte
}

// OpenStream opens the incoming stream of this call: STREAM messages with
// the call's procedure and serial go to it from now on. It is registered
// before the handler returns, so no data sent after the reply can be lost.
// If the handler then fails, the stream is discarded with the error reply.
func (call *Call) OpenStream() (*Stream, error) {
	return call.openStream(false, false, false)
}

// OpenSparseStream is OpenStream for a stream whose client may send holes
// (vol-upload --sparse): ReadSegment reports them, Read reads them as
// zeros.
func (call *Call) OpenSparseStream() (*Stream, error) {
	return call.openStream(true, false, false)
}

func (call *Call) openStream(sparse, outgoing, duplex bool) (*Stream, error) {
	if call.stream != nil {
		return nil, errors.New("server: call opened a second stream")
	}
	c := call.Conn
	key := streamKey{call.Header.Procedure, call.Header.Serial}
	s := &Stream{c: c, key: key, sparse: sparse, outgoing: outgoing, duplex: duplex,
		readable: make(chan struct{}, 1), writable: make(chan struct{}, 1), repliedCh: make(chan struct{})}
	c.streamsMu.Lock()
	defer c.streamsMu.Unlock()
	if c.streamsClosed {
		return nil, compat.Errorf(libvirt.ErrRPC, compat.FromRPC, "client connection is closed")
	}
	if len(c.streams) >= maxStreamsPerConn {
		return nil, compat.Errorf(libvirt.ErrRPC, compat.FromRPC, "too many open streams on this connection (limit %d)", maxStreamsPerConn)
	}
	if _, dup := c.streams[key]; dup {
		return nil, compat.Errorf(libvirt.ErrRPC, compat.FromRPC, "stream for serial %d already open", key.serial)
	}
	if c.streams == nil {
		c.streams = map[streamKey]*Stream{}
	}
	c.streams[key] = s
	call.stream = s
	return s, nil
}

// handleStream routes one STREAM (or STREAM_HOLE) message from the client.
// It runs on the connection's reader and blocks while the stream's buffer
// is full, which stops the client (it cannot outrun the driver).
func (c *Conn) handleStream(p *rpc.Packet) {
	key := streamKey{p.Procedure, p.Serial}
	c.streamsMu.Lock()
	var s *Stream
	if p.Program == rpc.ProgramRemote {
		// Streams belong to the remote program's calls.
		s = c.streams[key]
	}
	recent := false
	for _, k := range c.closedStreams {
		recent = recent || k == key
	}
	c.streamsMu.Unlock()
	if s == nil {
		// Stream data is not acknowledged, so a client may still be sending
		// when the stream ended here; libvirt drops such messages too.
		if recent {
			c.log.Debug("dropping data of an ended stream", "proc", p.Procedure, "serial", p.Serial, "status", p.Status)
		} else {
			c.log.Info("dropping message for unknown stream", "proc", p.Procedure, "serial", p.Serial, "status", p.Status)
		}
		return
	}
	if p.Type == rpc.StreamHole {
		if !s.sparse || s.outgoing {
			s.abortLocal(compat.Errorf(libvirt.ErrRPC, compat.FromRPC, "Unexpected stream hole"))
		} else if n, err := decodeStreamHole(p.Body); err != nil {
			s.abortLocal(err)
		} else if n > 0 {
			s.push(chunk{hole: n})
		}
		return
	}
	if s.outgoing && p.Status != rpc.Error {
		s.handleOutgoingFromClient(p)
		return
	}
	switch p.Status {
	case rpc.Continue:
		if len(p.Body) > 0 {
			s.push(chunk{data: p.Body})
		}
	case rpc.OK:
		s.mu.Lock()
		s.eof = true
		s.mu.Unlock()
		s.signal(s.readable)
	case rpc.Error:
		s.clientAbort(p.Body)
	default:
		s.abortLocal(compat.Errorf(libvirt.ErrRPC, compat.FromRPC, "stream aborted with unexpected status %d", p.Status))
	}
}

func (s *Stream) signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// push queues data, waiting while the buffer is full.
func (s *Stream) push(b chunk) {
	size := len(b.data)
	if b.hole > 0 {
		size = holeCost
	}
	for {
		s.mu.Lock()
		switch {
		case s.done || s.err != nil || s.eof:
			// Nobody will read it (data after the end is a client bug).
			s.mu.Unlock()
			return
		case s.queued == 0 || s.queued+size <= streamBufferBytes:
			s.queue = append(s.queue, b)
			s.queued += size
			s.mu.Unlock()
			s.signal(s.readable)
			return
		}
		s.mu.Unlock()
		select {
		case <-s.writable:
		case <-s.c.ctx.Done():
			return
		}
	}
}

// Read implements io.Reader. A hole reads as zeros.
func (s *Stream) Read(p []byte) (int, error) {
	n, hole, err := s.readSegment(p, true)
	if hole > 0 {
		clear(p[:hole])
		return int(hole), err
	}
	return n, err
}

// ReadSegment reads the next part of a sparse stream: data into buf
// (n > 0) or a hole of hole bytes. It returns io.EOF at the end.
func (s *Stream) ReadSegment(buf []byte) (n int, hole int64, err error) {
	return s.readSegment(buf, false)
}

// readSegment takes the next data or hole; with holeMax, a hole is taken
// at most len(p) bytes at a time.
func (s *Stream) readSegment(p []byte, holeMax bool) (int, int64, error) {
	for {
		s.mu.Lock()
		if s.err != nil {
			// An abort drops whatever was still queued.
			err := s.err
			s.mu.Unlock()
			return 0, 0, err
		}
		if s.done {
			s.mu.Unlock()
			return 0, 0, errors.New("server: read from a closed stream")
		}
		if s.cur.empty() && len(s.queue) > 0 {
			s.cur, s.queue[0] = s.queue[0], chunk{}
			s.queue = s.queue[1:]
		}
		if s.cur.hole > 0 && len(p) > 0 {
			h := s.cur.hole
			if holeMax && h > int64(len(p)) {
				h = int64(len(p))
			}
			s.cur.hole -= h
			if s.cur.hole == 0 {
				s.queued -= holeCost
			}
			s.mu.Unlock()
			s.signal(s.writable)
			return 0, h, nil
		}
		if len(s.cur.data) > 0 && len(p) > 0 {
			n := copy(p, s.cur.data)
			s.cur.data = s.cur.data[n:]
			s.queued -= n
			s.mu.Unlock()
			s.signal(s.writable)
			return n, 0, nil
		}
		if s.eof {
			s.mu.Unlock()
			return 0, 0, io.EOF
		}
		s.mu.Unlock()
		if len(p) == 0 {
			return 0, 0, nil
		}
		<-s.readable
	}
}

// Close ends the stream from the driver's side: an empty STREAM OK if the
// client ended it and everything was read, else a STREAM ERROR (the driver
// stopped early).
func (s *Stream) Close() error {
	s.mu.Lock()
	complete := s.eof && s.queued == 0
	s.mu.Unlock()
	if complete {
		s.finish(nil)
		return nil
	}
	s.finish(compat.Errorf(libvirt.ErrRPC, compat.FromRPC, "stream closed before the end of its data"))
	return nil
}

// CloseWithError ends the stream reporting err to the client as a STREAM
// ERROR (a nil err is Close).
func (s *Stream) CloseWithError(err error) error {
	if err == nil {
		return s.Close()
	}
	s.finish(err)
	return nil
}

// finish unregisters the stream and sends its end: STREAM OK when err is
// nil, else STREAM ERROR. Nothing is sent if the client aborted the stream
// or the connection is gone; later calls do nothing.
func (s *Stream) finish(err error) {
	s.mu.Lock()
	if s.done {
		s.mu.Unlock()
		return
	}
	s.done = true
	aborted := s.err != nil
	s.queue, s.cur, s.queued = nil, chunk{}, 0
	s.mu.Unlock()
	s.signal(s.writable)
	s.signal(s.readable)
	s.c.forgetStream(s.key)
	if aborted {
		return
	}
	end := &streamEnd{status: rpc.OK}
	if err != nil {
		body, mErr := xdr.Marshal(remoteError(err))
		if mErr != nil {
			s.c.log.Error("encode stream error", "err", mErr)
			return
		}
		end = &streamEnd{status: rpc.Error, body: body}
	}
	s.sendEnd(end)
}

// sendEnd sends the stream's last message, or keeps it until the opening
// call's reply has gone out.
func (s *Stream) sendEnd(end *streamEnd) {
	s.mu.Lock()
	if !s.replied {
		s.pendingEnd = end
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	// After the end, an outgoing stream's sender sends nothing more.
	s.sendMu.Lock()
	s.endSent = true
	s.c.send(rpc.Header{Program: rpc.ProgramRemote, Version: rpc.ProtocolVersion, Procedure: s.key.proc,
		Type: rpc.Stream, Serial: s.key.serial, Status: end.status}, end.body)
	s.sendMu.Unlock()
}

// replySent is called once the opening call's reply went out.
func (s *Stream) replySent() {
	s.mu.Lock()
	s.replied = true
	s.repliedOnce.Do(func() { close(s.repliedCh) })
	end := s.pendingEnd
	s.pendingEnd = nil
	s.mu.Unlock()
	if end != nil {
		s.sendEnd(end)
	}
}

// discard drops a stream whose call failed: the client got an error reply
// and sends no data, so nothing is sent; a reader gets an error.
func (s *Stream) discard() {
	s.abort(compat.Errorf(libvirt.ErrRPC, compat.FromRPC, "stream call failed"))
	s.mu.Lock()
	s.done = true
	s.mu.Unlock()
	// A sender waiting for the reply learns that none will come.
	s.repliedOnce.Do(func() { close(s.repliedCh) })
	s.c.forgetStream(s.key)
}

// abort fails the reader with err (if nothing failed it before).
func (s *Stream) abort(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.queue, s.cur, s.queued = nil, chunk{}, 0
	s.mu.Unlock()
	s.signal(s.readable)
	s.signal(s.writable)
}

// clientAbort handles the client's STREAM ERROR: the reader gets the
// client's error, and the abort is confirmed with an empty STREAM OK, as
// libvirt does.
func (s *Stream) clientAbort(body []byte) {
	var re rpc.RemoteError
	var err error
	if xdr.Unmarshal(body, &re) == nil && len(re.Message) == 1 {
		err = &compat.Error{Code: compat.Code(re.Code), Domain: compat.Domain(re.Domain), Detail: re.Message[0], Int1: -1, Verbatim: true}
	} else {
		err = compat.Errorf(libvirt.ErrRPC, compat.FromRPC, "stream aborted at client request")
	}
	s.c.log.Info("stream aborted by the client", "proc", s.key.proc, "serial", s.key.serial, "err", err)
	s.abort(err)
	s.mu.Lock()
	already := s.done
	s.done = true
	s.mu.Unlock()
	s.c.forgetStream(s.key)
	if !already {
		s.sendEnd(&streamEnd{status: rpc.OK})
	}
}

// abortLocal ends a stream the client broke (bad status, hole): the reader
// gets err, and the client a STREAM ERROR.
func (s *Stream) abortLocal(err error) {
	s.c.log.Info("aborting stream", "proc", s.key.proc, "serial", s.key.serial, "err", err)
	// The reader's error is set in the same step that ends the stream, so
	// a concurrent Read sees the reason, never a bare "closed stream".
	s.mu.Lock()
	already := s.done
	if s.err == nil {
		s.err = err
	}
	s.done = true
	s.queue, s.cur, s.queued = nil, chunk{}, 0
	s.mu.Unlock()
	s.signal(s.readable)
	s.signal(s.writable)
	s.c.forgetStream(s.key)
	if already {
		return
	}
	body, mErr := xdr.Marshal(remoteError(err))
	if mErr != nil {
		s.c.log.Error("encode stream error", "err", mErr)
		return
	}
	s.sendEnd(&streamEnd{status: rpc.Error, body: body})
}

func (c *Conn) forgetStream(key streamKey) {
	c.streamsMu.Lock()
	defer c.streamsMu.Unlock()
	if _, ok := c.streams[key]; !ok {
		return
	}
	delete(c.streams, key)
	if len(c.closedStreams) >= recentlyClosedStreams {
		c.closedStreams = c.closedStreams[1:]
	}
	c.closedStreams = append(c.closedStreams, key)
}

// abortStreams fails every open stream: the connection is closing.
func (c *Conn) abortStreams() {
	c.streamsMu.Lock()
	c.streamsClosed = true
	open := make([]*Stream, 0, len(c.streams))
	for _, s := range c.streams {
		open = append(open, s)
	}
	c.streams = nil
	c.streamsMu.Unlock()
	for _, s := range open {
		s.abort(compat.Errorf(libvirt.ErrRPC, compat.FromRPC, "client connection closed before the end of the stream"))
	}
}

// remoteError is the remote_error body for err.
func remoteError(err error) *rpc.RemoteError {
	le := compat.As(err)
	re := &rpc.RemoteError{
		Code:    int32(le.Code),
		Domain:  int32(le.Domain),
		Message: libvirt.OptString{le.Message()},
		Level:   2, // VIR_ERR_ERROR
		Str1:    libvirt.OptString{le.Template()},
		Int1:    le.Int1,
		Int2:    -1,
	}
	if le.Detail != "" {
		re.Str2 = libvirt.OptString{le.Detail}
	}
	return re
}
