package server

import (
	"errors"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/rpc"
	"github.com/govirtd/govirtd/xdr"
)

// Outgoing RPC streams: data the server sends after the reply to the call
// that opened the stream (vol-download), as STREAM messages with that
// call's procedure and serial. As libvirt's remote_daemon_stream.c does, a
// data message carries at most streamChunkBytes, a sparse stream sends
// holes as STREAM_HOLE messages, the end of the data is an empty STREAM
// CONTINUE, and the client then finishes the stream with its own STREAM OK,
// which the server confirms with another; a client's STREAM ERROR aborts
// the stream. Writes block on the connection, so a slow client slows the
// sender instead of filling the daemon's memory.

// streamChunkBytes is the most data one STREAM message carries: libvirt's
// VIR_NET_MESSAGE_LEGACY_PAYLOAD_MAX, which every client accepts.
const streamChunkBytes = 256 * 1024

// streamHole is virNetStreamHole, the body of a STREAM_HOLE message.
type streamHole struct {
	Length int64
	Flags  uint32
}

// decodeStreamHole reads a client's STREAM_HOLE body: the hole's length.
func decodeStreamHole(body []byte) (int64, error) {
	var h streamHole
	if err := xdr.Unmarshal(body, &h); err != nil || h.Length < 0 || h.Flags != 0 {
		return 0, compat.Errorf(libvirt.ErrRPC, compat.FromRPC, "malformed stream hole")
	}
	return h.Length, nil
}

var errStreamEnded = errors.New("server: stream ended")

// OpenSendStream opens the outgoing stream of this call; with sparse, the
// sender may send holes (SendHole). The handler starts the sender and
// returns; the data follows the reply.
func (call *Call) OpenSendStream(sparse bool) (*Stream, error) {
	return call.openStream(sparse, true, false)
}

// OpenDuplexStream opens a stream that carries data both ways (a
// console): the server sends with Send, and reads what the client sends
// with Read.
func (call *Call) OpenDuplexStream() (*Stream, error) {
	return call.openStream(false, true, true)
}

// waitReply waits until the call's reply went out. It fails if the stream
// ended first (the call failed, the client aborted, the connection went).
func (s *Stream) waitReply() error {
	select {
	case <-s.repliedCh:
	case <-s.c.ctx.Done():
		return errStreamEnded
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	if s.done || s.eof {
		return errStreamEnded
	}
	return nil
}

// sendMsg sends one message of the stream, unless its end went out.
func (s *Stream) sendMsg(typ rpc.Type, status rpc.Status, body []byte) error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if s.endSent {
		return errStreamEnded
	}
	s.c.send(rpc.Header{Program: rpc.ProgramRemote, Version: rpc.ProtocolVersion, Procedure: s.key.proc,
		Type: typ, Serial: s.key.serial, Status: status}, body)
	return nil
}

// Send sends data to the client, in messages of at most streamChunkBytes.
// It returns an error once the stream has ended (the client aborted or
// finished it, or the connection closed): the sender should stop.
func (s *Stream) Send(b []byte) error {
	if err := s.waitReply(); err != nil {
		return err
	}
	for len(b) > 0 {
		n := min(len(b), streamChunkBytes)
		if err := s.sendMsg(rpc.Stream, rpc.Continue, b[:n]); err != nil {
			return err
		}
		b = b[n:]
		if err := s.waitReply(); err != nil {
			return err
		}
	}
	return nil
}

// SendHole tells the client of a hole of n bytes (a sparse stream only).
func (s *Stream) SendHole(n int64) error {
	if !s.sparse {
		return errors.New("server: hole on a stream that is not sparse")
	}
	if err := s.waitReply(); err != nil {
		return err
	}
	body, err := xdr.Marshal(&streamHole{Length: n})
	if err != nil {
		return err
	}
	return s.sendMsg(rpc.StreamHole, rpc.Continue, body)
}

// SendEOF ends the data: an empty STREAM CONTINUE (libvirt's clients take
// a STREAM OK for the confirmation of their own finish, and drop the
// connection if none was asked for). The stream stays open until the
// client finishes it.
func (s *Stream) SendEOF() error {
	if err := s.waitReply(); err != nil {
		return err
	}
	return s.sendMsg(rpc.Stream, rpc.Continue, nil)
}

// SendError ends the stream with err: a STREAM ERROR, after which the
// client aborts it.
func (s *Stream) SendError(err error) {
	if err == nil {
		err = compat.Errorf(libvirt.ErrInternalError, compat.FromRPC, "stream ended")
	}
	if s.waitReply() != nil {
		// Nobody is listening: the call failed or the client went away.
		s.finish(nil)
		return
	}
	s.finish(err)
}

// handleOutgoingFromClient handles what a client sends on an outgoing
// stream (its STREAM ERROR is an abort, handled as for incoming ones). A
// STREAM OK finishes the stream: it is confirmed with a STREAM OK and the
// sender stops. Data is for a duplex stream's reader; on any other stream
// it aborts the stream.
func (s *Stream) handleOutgoingFromClient(p *rpc.Packet) {
	switch p.Status {
	case rpc.Continue:
		if !s.duplex {
			s.abortLocal(compat.Errorf(libvirt.ErrRPC, compat.FromRPC, "unexpected data on an outgoing stream"))
		} else if len(p.Body) > 0 {
			s.push(chunk{data: p.Body})
		}
	case rpc.OK:
		s.mu.Lock()
		s.eof = true
		s.mu.Unlock()
		s.finish(nil)
	default:
		s.abortLocal(compat.Errorf(libvirt.ErrRPC, compat.FromRPC, "unexpected data on an outgoing stream"))
	}
}
