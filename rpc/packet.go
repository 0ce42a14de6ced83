// Package rpc is libvirt's RPC packet layer: the length word, the 24-byte
// header, programs, message types and statuses, the size limits libvirt
// enforces, and the remote_error body of error replies. It knows bytes, not
// domains.
package rpc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Programs a libvirt peer may address.
const (
	ProgramRemote    uint32 = 0x20008086 // REMOTE_PROGRAM
	ProgramQEMU      uint32 = 0x20008087 // QEMU_PROGRAM (qemu-monitor-command & co)
	ProgramLXC       uint32 = 0x00068000 // LXC_PROGRAM
	ProgramKeepalive uint32 = 0x6b656570 // KEEPALIVE_PROGRAM, "keep"
	ProgramAdmin     uint32 = 0x06900690 // ADMIN_PROGRAM

	ProtocolVersion  uint32 = 1 // REMOTE_PROTOCOL_VERSION
	KeepaliveVersion uint32 = 1 // KEEPALIVE_PROTOCOL_VERSION
)

// Keepalive procedures.
const (
	KeepalivePing Procedure = 1
	KeepalivePong Procedure = 2
)

// Limits, from libvirt's virnetprotocol.x.
const (
	LenSize     = 4                // the length word
	HeaderSize  = 24               // prog, vers, proc, type, serial, status
	MaxMessage  = 32 * 1024 * 1024 // VIR_NET_MESSAGE_MAX: length word + header + payload
	MaxPayload  = MaxMessage - HeaderSize - LenSize
	MaxString   = 4 * 1024 * 1024 // VIR_NET_MESSAGE_STRING_MAX
	InitialSize = 65536           // VIR_NET_MESSAGE_INITIAL: a stream data chunk
)

// Type is a message type (virNetMessageType).
type Type uint32

// Message types.
const (
	Call         Type = 0 // client -> server, expects a Reply
	Reply        Type = 1 // server -> client, answers a Call
	Message      Type = 2 // either way, asynchronous (events, keepalive)
	Stream       Type = 3 // either way, data of a stream opened by a Call
	CallWithFDs  Type = 4 // Call carrying unix file descriptors
	ReplyWithFDs Type = 5 // Reply carrying unix file descriptors
	StreamHole   Type = 6 // a hole in a sparse stream
)

func (t Type) String() string {
	switch t {
	case Call:
		return "CALL"
	case Reply:
		return "REPLY"
	case Message:
		return "MESSAGE"
	case Stream:
		return "STREAM"
	case CallWithFDs:
		return "CALL_WITH_FDS"
	case ReplyWithFDs:
		return "REPLY_WITH_FDS"
	case StreamHole:
		return "STREAM_HOLE"
	}
	return fmt.Sprintf("TYPE_%d", uint32(t))
}

// Status is a message status (virNetMessageStatus).
type Status uint32

// Message statuses.
const (
	OK       Status = 0 // success / end of stream
	Error    Status = 1 // body is a remote_error
	Continue Status = 2 // stream data follows
)

func (s Status) String() string {
	switch s {
	case OK:
		return "OK"
	case Error:
		return "ERROR"
	case Continue:
		return "CONTINUE"
	}
	return fmt.Sprintf("STATUS_%d", uint32(s))
}

// Header is the fixed part of every message.
type Header struct {
	Program   uint32
	Version   uint32
	Procedure Procedure
	Type      Type
	Serial    uint32
	Status    Status
}

// initialRead is how much a packet's buffer starts with; it grows as data
// arrives.
const initialRead = 64 * 1024

// Packet is one decoded message: its header and its still-encoded body.
type Packet struct {
	Header
	Body []byte
}

// Errors of the framing layer. A connection that produced one of these is
// out of sync or hostile and is closed.
var (
	ErrTooSmall = errors.New("rpc: packet shorter than its header")
	ErrTooLarge = errors.New("rpc: packet larger than the 32 MiB limit")
)

// ReadPacket reads one whole message. The body is a fresh slice owned by the
// caller. It refuses a length over MaxMessage, and memory grows only with
// the bytes that actually arrive: a client announcing 32 MiB and sending
// nothing costs a few KiB, not 32 MiB, per connection.
func ReadPacket(r io.Reader) (*Packet, error) {
	var lenBuf [LenSize]byte
	if _, err := io.ReadFull(r, lenBuf[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(lenBuf[:])
	if n < LenSize+HeaderSize {
		return nil, fmt.Errorf("%w: length %d", ErrTooSmall, n)
	}
	if n > MaxMessage {
		return nil, fmt.Errorf("%w: length %d", ErrTooLarge, n)
	}
	want := int64(n - LenSize)
	var buf bytes.Buffer
	buf.Grow(int(min(want, initialRead)))
	got, err := io.CopyN(&buf, r, want)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("rpc: read %d-byte packet (got %d): %w", n, got, err)
	}
	return DecodePacket(buf.Bytes())
}

// DecodePacket splits a message without its length word into header and body.
func DecodePacket(buf []byte) (*Packet, error) {
	if len(buf) < HeaderSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooSmall, len(buf))
	}
	be := binary.BigEndian
	p := &Packet{
		Header: Header{
			Program:   be.Uint32(buf[0:]),
			Version:   be.Uint32(buf[4:]),
			Procedure: Procedure(be.Uint32(buf[8:])),
			Type:      Type(be.Uint32(buf[12:])),
			Serial:    be.Uint32(buf[16:]),
			Status:    Status(be.Uint32(buf[20:])),
		},
		Body: buf[HeaderSize:],
	}
	return p, nil
}

// AppendPacket appends a whole message (length word, header, body) to dst.
// PutFrame fills the first LenSize+HeaderSize bytes of msg, a whole message
// whose body was encoded after room left for them, with the length word
// and h. It refuses a message larger than MaxMessage.
func PutFrame(msg []byte, h Header) error {
	if len(msg) > MaxMessage {
		return fmt.Errorf("%w: %d bytes for %s %s", ErrTooLarge, len(msg), h.Procedure, h.Type)
	}
	be := binary.BigEndian
	be.PutUint32(msg[0:], uint32(len(msg)))
	be.PutUint32(msg[4:], h.Program)
	be.PutUint32(msg[8:], h.Version)
	be.PutUint32(msg[12:], uint32(h.Procedure))
	be.PutUint32(msg[16:], uint32(h.Type))
	be.PutUint32(msg[20:], h.Serial)
	be.PutUint32(msg[24:], uint32(h.Status))
	return nil
}

func AppendPacket(dst []byte, h Header, body []byte) ([]byte, error) {
	n := LenSize + HeaderSize + len(body)
	if n > MaxMessage {
		return dst, fmt.Errorf("%w: %d bytes for %s %s", ErrTooLarge, n, h.Procedure, h.Type)
	}
	be := binary.BigEndian
	dst = be.AppendUint32(dst, uint32(n))
	dst = be.AppendUint32(dst, h.Program)
	dst = be.AppendUint32(dst, h.Version)
	dst = be.AppendUint32(dst, uint32(h.Procedure))
	dst = be.AppendUint32(dst, uint32(h.Type))
	dst = be.AppendUint32(dst, h.Serial)
	dst = be.AppendUint32(dst, uint32(h.Status))
	return append(dst, body...), nil
}
