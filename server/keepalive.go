package server

import (
	"time"

	"github.com/govirtd/govirtd/rpc"
)

// handleKeepalive answers the keepalive program: PING gets PONG; PONG only
// proves the peer alive, which receiving it already recorded.
func (c *Conn) handleKeepalive(p *rpc.Packet) bool {
	if p.Type != rpc.Message {
		c.log.Info("dropping keepalive packet of unexpected type", "type", p.Type)
		return true
	}
	switch p.Procedure {
	case rpc.KeepalivePing:
		c.send(rpc.Header{Program: rpc.ProgramKeepalive, Version: rpc.KeepaliveVersion, Procedure: rpc.KeepalivePong, Type: rpc.Message}, nil)
	case rpc.KeepalivePong:
	default:
		c.log.Info("dropping unknown keepalive procedure", "proc", uint32(p.Procedure))
	}
	return true
}

// startKeepalive turns on server-side pings. Like libvirtd, the server pings
// only clients that asked for PROGRAM_KEEPALIVE support: an older client
// would not understand the messages.
func (c *Conn) startKeepalive() {
	c.keepalive.Store(true)
}

// keepaliveLoop pings a client keepalive_interval seconds after the last
// message it sent, then every keepalive_interval seconds while it stays
// silent, and drops it when keepalive_count pings went unanswered (with a
// count of 0, at the first silent interval, without a ping): dead-peer
// detection, as libvirtd's virKeepAliveTimer does it.
//
// The first ping is due a whole interval after the client's last message,
// not at the next tick of a free-running ticker, which could make it nearly
// two intervals. The timing matters beyond dead peers: libvirt's own client
// (virNetClientIO in 9.0) can miss the wake-up of a thread that queued a
// call while another thread waits on the socket, and then sends nothing
// until a message arrives. virsh migrate --postcopy-after-precopy hits it
// when its switch to post-copy is queued from the iteration event, and the
// switch then waits for the server's next message: libvirtd's ping, at most
// an interval after the client's last keepalive.
func (c *Conn) keepaliveLoop() {
	interval := time.Duration(c.srv.cfg.KeepaliveInterval) * time.Second
	if interval <= 0 {
		return
	}
	count := c.srv.cfg.KeepaliveCount
	t := time.NewTimer(interval)
	defer t.Stop()
	var pingedAt time.Time // when the last ping went out
	unanswered := 0        // pings sent since the client's last message
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		if !c.keepalive.Load() {
			t.Reset(interval)
			continue
		}
		last := time.Unix(0, c.lastRecv.Load())
		if last.After(pingedAt) {
			unanswered = 0
		}
		due := last.Add(interval)
		if unanswered > 0 {
			due = pingedAt.Add(interval)
		}
		if wait := time.Until(due); wait > 0 {
			t.Reset(wait)
			continue
		}
		if unanswered >= count {
			c.log.Warn("no response from client after keepalive pings; closing", "pings", unanswered, "idle", time.Since(last).Round(time.Second))
			c.close("keepalive timeout")
			return
		}
		pingedAt = time.Now() // before the send: an answer must come after it
		c.send(rpc.Header{Program: rpc.ProgramKeepalive, Version: rpc.KeepaliveVersion, Procedure: rpc.KeepalivePing, Type: rpc.Message}, nil)
		unanswered++
		t.Reset(interval)
	}
}
