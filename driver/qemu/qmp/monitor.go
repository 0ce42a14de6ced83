// Package qmp is a typed client for the QEMU Machine Protocol as spoken by
// QEMU 7.2 (Debian 12).
//
// One Monitor owns one QMP socket. Commands are methods (one per QMP
// command) on top of the generic Run; events are fanned out to any number of
// subscribers, each with its own unbounded queue, so neither a slow consumer
// nor a missing one can stall command replies.
//
// The transport is this package's own rather than go-qemu's SocketMonitor:
// that one hands out bufio.Scanner buffers that its reader goroutine then
// overwrites (a data race that corrupts replies while events flow,
// go-qemu issue #226), can take an early event for the qmp_capabilities
// reply and answer every later command with the previous reply (#210),
// drops the error class, and cannot carry lines over 64 KiB.
//
// Contexts: a Monitor sends one command at a time. A command whose context
// ends while it waits for its turn is never sent. Once sent, a command
// cannot be recalled: if its context ends before QEMU answers, the call
// returns ctx.Err() but QEMU may still carry the command out; the next
// command goes out only after that reply has arrived (and been discarded).
package qmp

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Version is the QEMU version announced in the QMP greeting.
type Version struct {
	Major, Minor, Micro int
	// Package is the distribution's build string, e.g.
	// "Debian 1:7.2+dfsg-7+deb12u18".
	Package string
}

func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Micro) }

// Monitor is a connected QMP monitor. It is safe for concurrent use.
type Monitor struct {
	conn         *net.UnixConn
	version      Version
	capabilities []string

	// sem holds the one command slot. It is taken by the sender and given
	// back by the reader when the matching reply arrives, so a reply
	// outliving its caller's context still keeps the next command back.
	sem      chan struct{}
	nextID   atomic.Uint64
	inflight atomic.Pointer[call]

	// oob is set when QEMU offered out-of-band execution and it was
	// enabled: commands sent with RunOOB are then answered even while
	// QEMU's main loop is stuck (a post-copy destination whose guest or
	// device model waits for a page that cannot arrive).
	oob      bool
	oobMu    sync.Mutex
	oobCalls map[uint64]*call
	// writeMu keeps an out-of-band command from interleaving with the
	// in-band one being written.
	writeMu sync.Mutex

	closeOnce sync.Once
	closeErr  error
	// disconnected is closed by the reader once the socket is gone, after
	// readErr is set.
	disconnected chan struct{}
	readErr      error

	mu       sync.Mutex
	subs     map[*subscriber]struct{}
	gone     bool // under mu; no new subscriber may register
	lifetime *subscriber
	// lifetimeAbandoned cancels the lifetime subscription at disconnect if
	// Events was never called: nobody will ever drain it, and its goroutine
	// would otherwise stay blocked on the full channel forever.
	lifetimeAbandoned chan struct{}
}

// call is the command in flight.
type call struct {
	id   uint64
	done chan message // capacity 1: the reader never waits for the caller
}

// message is anything QEMU sends after the greeting: a reply (Return or
// Error, with our ID echoed) or an event.
type message struct {
	ID     *uint64         `json:"id"`
	Return json.RawMessage `json:"return"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`

	Event     string         `json:"event"`
	Data      map[string]any `json:"data"`
	Timestamp struct {
		Seconds      int64 `json:"seconds"`
		Microseconds int64 `json:"microseconds"`
	} `json:"timestamp"`

	// raw is the line as QEMU sent it (for RunRaw).
	raw []byte
}

type greeting struct {
	QMP *struct {
		Version struct {
			QEMU struct {
				Major int `json:"major"`
				Minor int `json:"minor"`
				Micro int `json:"micro"`
			} `json:"qemu"`
			Package string `json:"package"`
		} `json:"version"`
		Capabilities []string `json:"capabilities"`
	} `json:"QMP"`
}

// Dial connects to the QMP socket at socketPath, reads the greeting and
// negotiates capabilities. QEMU creates and starts listening on the socket
// a little after its process starts, so while the socket does not exist yet
// or refuses connections Dial retries until ctx ends. A QEMU that accepts
// but never greets (its single monitor connection is taken by someone else,
// or it is stopped) also ends at ctx; give ctx a deadline.
func Dial(ctx context.Context, socketPath string) (*Monitor, error) {
	conn, err := dialRetry(ctx, socketPath)
	if err != nil {
		return nil, fmt.Errorf("qmp dial %s: %w", socketPath, err)
	}
	m := &Monitor{
		conn:              conn,
		sem:               make(chan struct{}, 1),
		disconnected:      make(chan struct{}),
		subs:              make(map[*subscriber]struct{}),
		lifetimeAbandoned: make(chan struct{}),
	}
	// The lifetime subscription exists before the first line is read, so
	// Events() sees everything, including events QEMU sends between our
	// qmp_capabilities and its reply.
	m.lifetime = newSubscriber(m.lifetimeAbandoned, unclaimedBacklog)
	m.subs[m.lifetime] = struct{}{}

	r := bufio.NewReader(conn)
	if err := m.handshake(ctx, r); err != nil {
		conn.Close()
		return nil, fmt.Errorf("qmp dial %s: %w", socketPath, err)
	}
	go m.lifetime.run(m)
	go m.readLoop(r)
	return m, nil
}

// handshake reads the greeting and negotiates capabilities, bounded by ctx.
func (m *Monitor) handshake(ctx context.Context, r *bufio.Reader) error {
	// Reads have no context; a past deadline makes the blocked read return.
	stop := context.AfterFunc(ctx, func() { m.conn.SetDeadline(time.Unix(1, 0)) })
	err := m.negotiate(r)
	if !stop() {
		return fmt.Errorf("handshake: %w", ctx.Err())
	}
	if err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	return nil
}

func (m *Monitor) negotiate(r *bufio.Reader) error {
	line, err := r.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("read greeting: %w", err)
	}
	var g greeting
	if err := json.Unmarshal(line, &g); err != nil || g.QMP == nil {
		return fmt.Errorf("not a QMP greeting: %.200q", line)
	}
	v := g.QMP.Version
	m.version = Version{Major: v.QEMU.Major, Minor: v.QEMU.Minor, Micro: v.QEMU.Micro, Package: v.Package}
	m.capabilities = g.QMP.Capabilities

	negotiate := `{"execute":"qmp_capabilities"}`
	for _, c := range m.capabilities {
		if c == "oob" {
			negotiate = `{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}`
			m.oob = true
		}
	}
	if _, err := m.conn.Write([]byte(negotiate + "\n")); err != nil {
		return fmt.Errorf("send qmp_capabilities: %w", err)
	}
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return fmt.Errorf("read qmp_capabilities reply: %w", err)
		}
		var msg message
		if err := json.Unmarshal(line, &msg); err != nil {
			return fmt.Errorf("decode qmp_capabilities reply %.200q: %w", line, err)
		}
		if msg.Event != "" {
			// Command mode is on before QEMU sends the reply, so an event
			// may come first; it is an event, not the answer.
			m.publish(msg)
			continue
		}
		if msg.Error != nil {
			return fmt.Errorf("qmp_capabilities: %w", &CommandError{Command: "qmp_capabilities", Class: msg.Error.Class, Desc: msg.Error.Desc})
		}
		return nil
	}
}

// dialRetry dials until the socket accepts a connection or ctx ends.
func dialRetry(ctx context.Context, socketPath string) (*net.UnixConn, error) {
	var d net.Dialer
	backoff := 5 * time.Millisecond
	for {
		c, err := d.DialContext(ctx, "unix", socketPath)
		if err == nil {
			return c.(*net.UnixConn), nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w (last attempt: %v)", ctx.Err(), err)
		}
		// ENOENT: QEMU has not created the socket yet. ECONNREFUSED: a stale
		// socket file, or QEMU not listening yet. EAGAIN: the listen backlog
		// is full. Everything else will not fix itself.
		if !errors.Is(err, syscall.ENOENT) && !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, syscall.EAGAIN) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (last attempt: %v)", ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 200*time.Millisecond)
	}
}

// Version returns the QEMU version from the greeting.
func (m *Monitor) Version() Version { return m.version }

// Capabilities returns the capabilities QEMU offered in its greeting (QEMU
// 7.2 offers "oob"; this client enables none).
func (m *Monitor) Capabilities() []string { return append([]string(nil), m.capabilities...) }

// Disconnected is closed once the monitor connection is gone: QEMU exited
// or closed the socket, the socket broke, or Close was called.
func (m *Monitor) Disconnected() <-chan struct{} { return m.disconnected }

// Close disconnects from QEMU (QEMU keeps running) and waits until every
// event received so far has been queued to the subscribers, whose channels
// are then closed once drained. Close is idempotent; in-flight commands
// fail with ErrDisconnected.
func (m *Monitor) Close() error {
	m.closeConn()
	<-m.disconnected
	return m.closeErr
}

func (m *Monitor) closeConn() {
	m.closeOnce.Do(func() {
		if err := m.conn.Close(); err != nil {
			m.closeErr = fmt.Errorf("qmp close: %w", err)
		}
	})
}

// readLoop reads QEMU's messages until the socket ends, routing replies to
// the command in flight and events to the subscribers. It never blocks on
// either, so a slow event consumer cannot hold up command replies.
func (m *Monitor) readLoop(r *bufio.Reader) {
	var err error
	for {
		var line []byte
		// ReadBytes allocates each line: nothing handed out is reused.
		line, err = r.ReadBytes('\n')
		if len(line) > 0 {
			m.dispatch(line)
		}
		if err != nil {
			break
		}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		err = nil // QEMU hung up, or Close: the ordinary ways to end
	}
	m.readErr = err
	m.closeConn()

	m.mu.Lock()
	m.gone = true
	subs := m.subs
	m.subs = nil
	m.mu.Unlock()
	for s := range subs {
		s.finish()
	}
	if m.lifetime.abandonIfUnclaimed() {
		close(m.lifetimeAbandoned)
	}
	close(m.disconnected)
}

func (m *Monitor) dispatch(line []byte) {
	var msg message
	if err := json.Unmarshal(line, &msg); err != nil {
		// QEMU only sends JSON objects; skipping a line we cannot parse
		// keeps the monitor alive. A lost reply surfaces as that command's
		// context expiring.
		return
	}
	if msg.Event != "" {
		m.publish(msg)
		return
	}
	msg.raw = line
	if msg.ID != nil {
		m.oobMu.Lock()
		oc := m.oobCalls[*msg.ID]
		delete(m.oobCalls, *msg.ID)
		m.oobMu.Unlock()
		if oc != nil {
			oc.done <- msg
			return
		}
	}
	c := m.inflight.Load()
	if c == nil || msg.ID == nil || *msg.ID != c.id {
		return // not an answer to the command in flight
	}
	m.inflight.Store(nil)
	c.done <- msg
	<-m.sem
}

// errDisconnected is ErrDisconnected, with the socket error when the
// connection ended abnormally.
func (m *Monitor) errDisconnected() error {
	// readErr is written before disconnected is closed.
	if isDone(m.disconnected) && m.readErr != nil {
		return fmt.Errorf("%w: %w", ErrDisconnected, m.readErr)
	}
	return ErrDisconnected
}

// request is a QMP command on the wire. A nil Arguments is left out rather
// than sent as null, which QEMU would reject. QEMU echoes ID in its reply.
type request struct {
	Execute   string `json:"execute"`
	Arguments any    `json:"arguments,omitempty"`
	ID        uint64 `json:"id"`
}

// oobRequest is a command for out-of-band execution.
type oobRequest struct {
	ExecOOB   string `json:"exec-oob"`
	Arguments any    `json:"arguments,omitempty"`
	ID        uint64 `json:"id"`
}

// RunOOB is Run for the few commands QEMU allows out of band
// (migrate-pause, migrate-recover, ...): sent at once, beside any command
// in flight, and executed by QEMU's monitor thread, so it is answered even
// when QEMU's main loop is blocked. Without out-of-band support in this
// QEMU it is Run.
func (m *Monitor) RunOOB(ctx context.Context, command string, args, result any) error {
	if !m.oob {
		return m.Run(ctx, command, args, result)
	}
	id := m.nextID.Add(1)
	payload, err := json.Marshal(oobRequest{ExecOOB: command, Arguments: args, ID: id})
	if err != nil {
		return fmt.Errorf("qmp %s: encode arguments: %w", command, err)
	}
	if isDone(m.disconnected) {
		return fmt.Errorf("qmp %s: %w", command, m.errDisconnected())
	}
	c := &call{id: id, done: make(chan message, 1)}
	m.oobMu.Lock()
	if m.oobCalls == nil {
		m.oobCalls = map[uint64]*call{}
	}
	m.oobCalls[id] = c
	m.oobMu.Unlock()
	defer func() {
		m.oobMu.Lock()
		delete(m.oobCalls, id)
		m.oobMu.Unlock()
	}()
	if err := m.send(ctx, append(payload, '\n'), nil); err != nil {
		return fmt.Errorf("qmp %s: %w", command, err)
	}
	select {
	case msg := <-c.done:
		return decodeReply(command, msg, result)
	case <-ctx.Done():
		return fmt.Errorf("qmp %s: %w", command, ctx.Err())
	case <-m.disconnected:
		return fmt.Errorf("qmp %s: %w", command, m.errDisconnected())
	}
}

// Run executes a QMP command with the given arguments (marshalled to JSON,
// nil for none) and unmarshals QEMU's "return" value into result (nil to
// ignore it). It is the escape hatch for commands without a wrapper.
//
// Errors: *CommandError when QEMU rejected the command, ErrDisconnected
// when the monitor is gone, ctx.Err() when ctx ended first (see the package
// documentation for what that means for the command), all wrapped as
// "qmp <command>: ...". When Run returns, every event QEMU sent before its
// reply has been queued to the subscribers.
func (m *Monitor) Run(ctx context.Context, command string, args, result any) error {
	return m.run(ctx, command, args, result, nil)
}

func (m *Monitor) run(ctx context.Context, command string, args, result any, file *os.File) error {
	msg, err := m.roundTrip(ctx, command, func(id uint64) ([]byte, error) {
		return json.Marshal(request{Execute: command, Arguments: args, ID: id})
	}, file)
	if err != nil {
		return err
	}
	return decodeReply(command, msg, result)
}

// roundTrip sends the command encode makes for the given id and returns
// QEMU's reply to it, whatever it says. Errors are the transport's (or
// encode's), wrapped as "qmp <command>: ...".
func (m *Monitor) roundTrip(ctx context.Context, command string, encode func(id uint64) ([]byte, error), file *os.File) (message, error) {
	id := m.nextID.Add(1)
	payload, err := encode(id)
	if err != nil {
		return message{}, fmt.Errorf("qmp %s: encode arguments: %w", command, err)
	}
	payload = append(payload, '\n')

	// Check first: select picks among ready cases at random, and a dead
	// context or monitor must win over a free slot.
	if err := ctx.Err(); err != nil {
		return message{}, fmt.Errorf("qmp %s: %w", command, err)
	}
	if isDone(m.disconnected) {
		return message{}, fmt.Errorf("qmp %s: %w", command, m.errDisconnected())
	}
	select {
	case m.sem <- struct{}{}:
	case <-ctx.Done():
		return message{}, fmt.Errorf("qmp %s: %w", command, ctx.Err())
	case <-m.disconnected:
		return message{}, fmt.Errorf("qmp %s: %w", command, m.errDisconnected())
	}

	c := &call{id: id, done: make(chan message, 1)}
	m.inflight.Store(c)
	if err := m.send(ctx, payload, file); err != nil {
		m.inflight.Store(nil)
		<-m.sem
		return message{}, fmt.Errorf("qmp %s: %w", command, err)
	}

	select {
	case msg := <-c.done:
		return msg, nil
	case <-ctx.Done():
		// A reply that made it is worth more than the context's verdict.
		select {
		case msg := <-c.done:
			return msg, nil
		default:
		}
		return message{}, fmt.Errorf("qmp %s: %w", command, ctx.Err())
	case <-m.disconnected:
		// The reader delivers a reply before it closes disconnected.
		select {
		case msg := <-c.done:
			return msg, nil
		default:
		}
		return message{}, fmt.Errorf("qmp %s: %w", command, m.errDisconnected())
	}
}

// send writes one command, with file's descriptor as SCM_RIGHTS ancillary
// data if file is not nil. The write is interrupted when ctx ends; since a
// half-written command leaves the stream unusable, that closes the monitor
// unless nothing had been written yet.
func (m *Monitor) send(ctx context.Context, payload []byte, file *os.File) error {
	interrupted := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		m.conn.SetWriteDeadline(time.Unix(1, 0))
		close(interrupted)
	})
	var n int
	var err error
	m.writeMu.Lock()
	if file == nil {
		n, err = m.conn.Write(payload)
	} else {
		n, err = m.writeWithFD(payload, file)
	}
	m.writeMu.Unlock()
	if !stop() {
		// The interrupt has started; let it finish before clearing the
		// deadline, or it could land on the next command's write.
		<-interrupted
		m.conn.SetWriteDeadline(time.Time{})
		if err == nil {
			return nil // sent in full just before ctx ended; wait for the reply as usual
		}
	}
	if err == nil {
		return nil
	}
	if n == 0 && ctx.Err() != nil {
		return ctx.Err()
	}
	m.closeConn()
	return fmt.Errorf("%w: write: %w", ErrDisconnected, err)
}

func (m *Monitor) writeWithFD(payload []byte, file *os.File) (int, error) {
	rc, err := file.SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("descriptor of %s: %w", file.Name(), err)
	}
	var n int
	var werr error
	// Control keeps the descriptor valid (not closed underneath us) for
	// the duration of the write, and unlike Fd() leaves its blocking mode
	// alone.
	if err := rc.Control(func(fd uintptr) {
		n, _, werr = m.conn.WriteMsgUnix(payload, syscall.UnixRights(int(fd)), nil)
	}); err != nil {
		return 0, fmt.Errorf("descriptor of %s: %w", file.Name(), err)
	}
	return n, werr
}

func isDone(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func decodeReply(command string, msg message, result any) error {
	if msg.Error != nil {
		return fmt.Errorf("qmp %s: %w", command, &CommandError{Command: command, Class: msg.Error.Class, Desc: msg.Error.Desc})
	}
	if result == nil {
		return nil
	}
	if len(msg.Return) == 0 {
		return fmt.Errorf("qmp %s: reply has no return value", command)
	}
	if err := json.Unmarshal(msg.Return, result); err != nil {
		return fmt.Errorf("qmp %s: decode return value: %w", command, err)
	}
	return nil
}
