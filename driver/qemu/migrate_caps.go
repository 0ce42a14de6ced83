package qemu

import (
	"context"

	"github.com/govirtd/govirtd/compat/migparams"
	"github.com/govirtd/govirtd/driver/qemu/qmp"
)

// Migration capabilities: the sets libvirt 9.0 gives QEMU 7.2 on each side
// (protocol facts §7), and what each QEMU has on, so only changes are sent.

// sourceCaps are the migration capabilities the source sets: QEMU pauses
// before the switch-over so the daemon decides the last step, and the
// return path lets the destination report failure to the source.
func sourceCaps(autoConverge, tunnelled bool) []qmp.MigrationCapability {
	return []qmp.MigrationCapability{
		{Capability: "xbzrle"},
		{Capability: "auto-converge", State: autoConverge},
		{Capability: "rdma-pin-all"},
		{Capability: "postcopy-ram"},
		{Capability: "compress"},
		{Capability: "pause-before-switchover", State: true},
		{Capability: "late-block-activate"},
		{Capability: "multifd"},
		{Capability: "dirty-bitmaps"},
		{Capability: "return-path", State: !tunnelled},
		{Capability: "zero-copy-send"},
	}
}

// destCaps are the destination's: block devices are activated only when
// the guest resumes, so the source keeps the disk until then.
func destCaps(tunnelled bool) []qmp.MigrationCapability {
	return []qmp.MigrationCapability{
		{Capability: "xbzrle"},
		{Capability: "auto-converge"},
		{Capability: "rdma-pin-all"},
		{Capability: "postcopy-ram"},
		{Capability: "compress"},
		{Capability: "pause-before-switchover"},
		{Capability: "late-block-activate", State: true},
		{Capability: "multifd"},
		{Capability: "dirty-bitmaps"},
		{Capability: "return-path", State: !tunnelled},
		{Capability: "zero-copy-send"},
	}
}

// withTuning turns on the capabilities compression, parallel migration
// and post-copy ask for (xbzrle, compress, multifd, postcopy-ram: on both
// sides, as libvirt sets them).
func withTuning(caps []qmp.MigrationCapability, t migparams.Tuning) []qmp.MigrationCapability {
	for i := range caps {
		switch caps[i].Capability {
		case "xbzrle":
			caps[i].State = caps[i].State || t.XBZRLE
		case "compress":
			caps[i].State = caps[i].State || t.Compress
		case "multifd":
			caps[i].State = caps[i].State || t.Multifd
		case "postcopy-ram":
			caps[i].State = caps[i].State || t.Postcopy
		}
	}
	return caps
}

// tuningParams adds the tuning's parameters to p.
func tuningParams(p *qmp.MigrationParameters, t migparams.Tuning) {
	p.XBZRLECacheSize = t.XBZRLECacheSize
	p.CompressLevel = t.CompressLevel
	p.CompressThreads = t.CompressThreads
	p.DecompressThreads = t.DecompressThreads
	p.MultifdChannels = t.MultifdChannels
	p.MultifdCompression = t.MultifdCompression
	p.MultifdZlibLevel = t.MultifdZlibLevel
	p.MultifdZstdLevel = t.MultifdZstdLevel
	if t.PostcopyBandwidth != nil {
		p.MaxPostcopyBandwidth = t.PostcopyBandwidth
	}
}

// allCapsOff resets capabilities after a migration, as libvirt does
// (migration events stay on).
func allCapsOff() []qmp.MigrationCapability {
	caps := sourceCaps(false, true)
	for i := range caps {
		caps[i].State = false
	}
	return caps
}

// setMigrationCaps brings QEMU's migration capabilities to caps, sending
// only those that differ from what this QEMU is known to have (the result is
// the same as sending the whole list, as libvirt does, minus QEMU's
// per-capability cost).
func (d *Driver) setMigrationCaps(ctx context.Context, dom *domain, mon *qmp.Monitor, caps []qmp.MigrationCapability) error {
	dom.mu.Lock()
	known := dom.migCaps
	dom.mu.Unlock()
	send := capsToSend(known, caps)
	if len(send) == 0 {
		return nil
	}
	err := mon.MigrateSetCapabilities(ctx, send)
	dom.mu.Lock()
	defer dom.mu.Unlock()
	if dom.mon != mon {
		return err // another QEMU by now
	}
	if err != nil {
		dom.migCaps = nil // QEMU may have applied part of it
		return err
	}
	dom.migCaps = applyCaps(dom.migCaps, send)
	return nil
}

// capsToSend is the part of want that differs from known (all of it when
// known is nil: unknown).
func capsToSend(known map[string]bool, want []qmp.MigrationCapability) []qmp.MigrationCapability {
	if known == nil {
		return want
	}
	var send []qmp.MigrationCapability
	for _, c := range want {
		if known[c.Capability] != c.State {
			send = append(send, c)
		}
	}
	return send
}

// applyCaps returns known after QEMU accepted sent. From an unknown state,
// only what was sent (and "events", which every QEMU gets at start) is known
// afterwards.
func applyCaps(known map[string]bool, sent []qmp.MigrationCapability) map[string]bool {
	next := make(map[string]bool, len(known)+len(sent))
	for k, v := range known {
		next[k] = v
	}
	if known == nil {
		next["events"] = true
	}
	for _, c := range sent {
		if c.State {
			next[c.Capability] = true
		} else {
			delete(next, c.Capability)
		}
	}
	return next
}
