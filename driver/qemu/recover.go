package qemu

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/driver/qemu/domainxml"
	"github.com/govirtd/govirtd/driver/qemu/migration"
	"github.com/govirtd/govirtd/driver/qemu/process"
	"github.com/govirtd/govirtd/driver/qemu/store"
)

// load rebuilds the driver's state from disk: persistent definitions, then
// the running domains recorded in status files, then autostart.
func (d *Driver) load(ctx context.Context) error {
	defs, err := d.store.Definitions()
	if err != nil {
		return fmt.Errorf("load definitions: %w", err)
	}
	for name, text := range defs {
		def, err := domainxml.Parse(text)
		if err != nil {
			// A definition we wrote ourselves no longer parses: keep the
			// file for a human, start without the domain.
			d.log.Error("stored definition does not parse; skipping it", "domain", name, "err", err)
			continue
		}
		uuid, err := parseUUID(def.UUID)
		if err != nil {
			d.log.Error("stored definition has a bad uuid; skipping it", "domain", name, "err", err)
			continue
		}
		if prev := d.byUUID[uuid]; prev != nil {
			// Two definitions with one UUID: a rename was interrupted
			// after writing the new name (store.RenameDefinition).
			d.finishRename(prev, name, def)
			continue
		}
		dom := newDomain(def.Name, uuid)
		dom.def = def
		dom.persistent = true
		dom.autostart = d.store.Autostart(def.Name)
		if _, err := os.Stat(d.store.ManagedSavePath(def.Name)); err == nil {
			dom.managedSave = true
		}
		d.add(dom)
	}

	statuses, err := d.store.Statuses()
	if err != nil {
		return fmt.Errorf("load domain status: %w", err)
	}
	for _, st := range statuses {
		d.reattach(ctx, st)
	}

	for _, dom := range d.all() {
		dom.mu.Lock()
		auto := dom.autostart && dom.id == -1 && dom.def != nil
		dom.mu.Unlock()
		if auto {
			go d.autostart(dom)
		}
	}
	return nil
}

// finishRename resolves two stored definitions of one domain left by a
// rename the daemon did not finish: the newer file is the new name, the
// older one goes (its autostart mark moves over).
func (d *Driver) finishRename(prev *domain, name string, def *libvirtxml.Domain) {
	older, newer := prev.name, name
	pt, err1 := d.store.DefinitionModTime(prev.name)
	nt, err2 := d.store.DefinitionModTime(name)
	if err1 == nil && err2 == nil && nt.Before(pt) {
		older, newer = name, prev.name
	}
	d.log.Warn("two definitions with one uuid: finishing an interrupted rename", "old", older, "new", newer)
	auto := d.store.Autostart(older) || d.store.Autostart(newer)
	if auto {
		if err := d.store.SetAutostart(newer, true); err != nil {
			d.log.Error("finish rename: autostart mark", "domain", newer, "err", err)
		}
	}
	if err := d.store.RemoveDefinition(older); err != nil {
		d.log.Error("finish rename: remove old definition", "domain", older, "err", err)
	}
	if newer == name {
		d.mu.Lock()
		d.removeLocked(prev)
		prev.name = def.Name
		prev.def = def
		d.addLocked(prev)
		d.mu.Unlock()
	}
	prev.autostart = auto
}

// reattach takes over a QEMU process that outlived a previous daemon: it
// keeps its id and state, and is managed as before. A process that died in
// the meantime is reported shut off (crashed).
func (d *Driver) reattach(ctx context.Context, st *store.Status) {
	log := d.log.With("domain", st.Name, "pid", st.PID)
	uuid, err := parseUUID(st.UUID)
	if err != nil {
		log.Error("status file has a bad uuid", "err", err)
		return
	}
	live := &libvirtxml.Domain{}
	if err := live.Unmarshal(st.LiveXML); err != nil {
		log.Error("status file has a bad live definition", "err", err)
		return
	}
	d.mu.Lock()
	dom := d.byUUID[uuid]
	if dom == nil {
		dom = newDomain(st.Name, uuid)
		d.addLocked(dom)
	}
	d.mu.Unlock()
	if st.ID > d.lastID.Load() {
		d.lastID.Store(st.ID)
	}

	gone := func(why error) {
		log.Warn("QEMU of a running domain is gone; marking it crashed", "err", why)
		d.store.RemoveStatus(st.Name)
		dom.mu.Lock()
		dom.state, dom.reason = libvirt.DomainShutoff, int32(libvirt.DomainShutoffCrashed)
		persistent := dom.persistent
		dom.mu.Unlock()
		if !persistent {
			d.remove(dom)
		}
	}
	proc, err := process.Attach(st.PID, st.StartTime)
	if err != nil {
		gone(err)
		return
	}
	mctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	mon, err := dialMonitor(mctx, st.Monitor, proc)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			// Alive but unreachable: do not kill a guest we cannot talk
			// to; leave it for a human and say so.
			log.Error("cannot reconnect to the monitor of a running QEMU", "err", err)
		}
		proc.Kill(ctx, killGrace)
		gone(err)
		return
	}
	events := mon.Subscribe(d.ctx)
	for _, p := range autoDisplayPorts(live) {
		d.displayPorts.claim(p)
	}
	dom.mu.Lock()
	dom.live = live
	dom.id = st.ID
	dom.proc = proc
	dom.mon = mon
	dom.migCaps = nil // unknown: whatever the previous daemon left set
	dom.runDir = st.RunDir
	dom.state, dom.reason = libvirt.DomainState(st.State), st.Reason
	dom.stopped = make(chan struct{})
	dom.mu.Unlock()
	// The guest may have been paused or resumed while nobody listened.
	if s, err := mon.QueryStatus(ctx); err == nil {
		dom.mu.Lock()
		if s.Running && dom.state == libvirt.DomainPaused {
			dom.state, dom.reason = libvirt.DomainRunning, int32(libvirt.DomainRunningUnpaused)
		} else if !s.Running && dom.state == libvirt.DomainRunning {
			dom.state, dom.reason = libvirt.DomainPaused, int32(libvirt.DomainPausedUnknown)
		}
		dom.mu.Unlock()
	}
	go d.watch(dom, proc, mon, events)
	log.Info("reconnected to running domain", "id", st.ID)
	if job, err := migration.Unmarshal(st.Job); err != nil {
		log.Error("status file has a bad migration job", "err", err)
	} else if job != nil {
		d.recoverJob(ctx, dom, job)
	}
}

func (d *Driver) autostart(dom *domain) {
	ctx, cancel := context.WithTimeout(d.ctx, 2*time.Minute)
	defer cancel()
	err := withJob(ctx, dom, "autostart", func() error {
		dom.mu.Lock()
		def := dom.def
		dom.mu.Unlock()
		if def == nil || dom.active() {
			return nil
		}
		// As libvirt's autostart: from the managed save image if any.
		return d.bootOrRestore(ctx, dom, false, false)
	})
	if err != nil {
		d.log.Error("autostart failed", "domain", dom.name, "err", err)
	}
}
