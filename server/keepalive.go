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

// keepaliveLoop pings an idle client every keepalive_interval seconds and
// drops it after keepalive_count unanswered pings (dead-peer detection: a
// vanished client otherwise holds its resources forever).
func (c *Conn) keepaliveLoop() {
	interval := time.Duration(c.srv.cfg.KeepaliveInterval) * time.Second
	if interval <= 0 {
		return
	}
	count := c.srv.cfg.KeepaliveCount
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		if !c.keepalive.Load() {
			continue
		}
		idle := time.Since(time.Unix(0, c.lastRecv.Load()))
		if idle < interval {
			continue
		}
		if count > 0 && idle >= interval*time.Duration(count+1) {
			c.log.Warn("no response from client after keepalive pings; closing", "idle", idle.Round(time.Second))
			c.close("keepalive timeout")
			return
		}
		c.send(rpc.Header{Program: rpc.ProgramKeepalive, Version: rpc.KeepaliveVersion, Procedure: rpc.KeepalivePing, Type: rpc.Message}, nil)
	}
}
