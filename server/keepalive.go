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

// waitingClientPing is how long a client that waits on a call may stay
// silent before it is pinged, whatever keepalive_interval says. libvirt's
// own client (virNetClientIOEventLoop in 9.0) can lose the wake-up of a
// thread that queues a call while another thread waits on the socket for
// a reply: the queued call, and the client's keepalives with it, then go
// out only when a message arrives from the server. virsh migrate does
// this all the time: its --postcopy-after-precopy switch is queued from
// the iteration event, its --timeout action and --verbose progress from
// its main thread, all while the migrate thread waits for Perform. Against
// libvirtd such a call waits for the next keepalive ping, up to an
// interval (5 s); the post-copy benchmark caught it in about a third of
// its moves, on both daemons. A ping a second costs a client with a call
// in flight 28 bytes each way.
const waitingClientPing = time.Second

// keepaliveLoop pings a client keepalive_interval seconds after the last
// message it sent, then every keepalive_interval seconds while it stays
// silent, and drops it when keepalive_count pings went unanswered (with a
// count of 0, at the first silent interval, without a ping): dead-peer
// detection, as libvirtd's virKeepAliveTimer does it. The first ping is
// due a whole interval after the client's last message, not at the next
// tick of a free-running ticker, which could make it nearly two intervals.
//
// A client with a call in flight is also pinged after waitingClientPing
// of silence (see there). Those pings do not count towards
// keepalive_count: they wake a client, they do not test it.
func (c *Conn) keepaliveLoop() {
	interval := time.Duration(c.srv.cfg.KeepaliveInterval) * time.Second
	if interval <= 0 {
		return
	}
	count := c.srv.cfg.KeepaliveCount
	t := time.NewTimer(interval)
	defer t.Stop()
	var pingedAt time.Time // when the last dead-peer ping went out
	var wokenAt time.Time  // when the last ping for a waiting client went out
	unanswered := 0        // dead-peer pings sent since the client's last message
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		case <-c.callStarted:
		}
		if !c.keepalive.Load() {
			t.Reset(interval)
			continue
		}
		now := time.Now()
		last := time.Unix(0, c.lastRecv.Load())
		if last.After(pingedAt) {
			unanswered = 0
		}
		due := last.Add(interval)
		if unanswered > 0 {
			due = pingedAt.Add(interval)
		}
		if !now.Before(due) {
			if unanswered >= count {
				c.log.Warn("no response from client after keepalive pings; closing", "pings", unanswered, "idle", now.Sub(last).Round(time.Second))
				c.close("keepalive timeout")
				return
			}
			pingedAt = now // before the send: an answer must come after it
			c.ping()
			unanswered++
			due = now.Add(interval)
		}
		if len(c.inflight) > 0 {
			wake := latest(last, pingedAt, wokenAt).Add(waitingClientPing)
			if !now.Before(wake) {
				wokenAt = now
				c.ping()
				wake = now.Add(waitingClientPing)
			}
			if wake.Before(due) {
				due = wake
			}
		}
		t.Reset(due.Sub(now))
	}
}

func (c *Conn) ping() {
	c.send(rpc.Header{Program: rpc.ProgramKeepalive, Version: rpc.KeepaliveVersion, Procedure: rpc.KeepalivePing, Type: rpc.Message}, nil)
}

func latest(ts ...time.Time) time.Time {
	var l time.Time
	for _, t := range ts {
		if t.After(l) {
			l = t
		}
	}
	return l
}
