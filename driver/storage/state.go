package storage

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// The pools that run are recorded in run/NAME.xml, as libvirt's
// /run/libvirt/storage state files, so that a restarted daemon takes them
// over running (transient ones included). libvirt's state directory is
// on a tmpfs and goes away with a reboot; this one is under the
// configuration directory, so each file carries the boot it was written
// in and is ignored after another.

func (d *Driver) runDir() string               { return filepath.Join(d.dir, "run") }
func (d *Driver) statePath(name string) string { return filepath.Join(d.runDir(), name+".xml") }

// bootID names this boot of the host; "" if the kernel does not say.
func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

const stateHead, stateTail = "<poolstate boot='", "</poolstate>\n"

// saveState records that the pool runs, with its live definition. A
// failure costs only the takeover at the next daemon start: it is logged.
func (d *Driver) saveState(p *pool) {
	data := stateHead + bootID() + "'>\n" + p.def.format() + stateTail
	tmp := d.statePath(p.def.Name) + ".tmp"
	err := os.WriteFile(tmp, []byte(data), 0o600)
	if err == nil {
		err = os.Rename(tmp, d.statePath(p.def.Name))
	}
	if err != nil {
		os.Remove(tmp)
		d.log.Warn("cannot save storage pool state", "pool", p.def.Name, "err", err)
	}
}

func (d *Driver) removeState(name string) {
	if err := removeFile(d.statePath(name)); err != nil {
		d.log.Warn("cannot remove storage pool state", "pool", name, "err", err)
	}
}

// loadStates takes over the pools that ran in this boot when the daemon
// stopped: a pool whose directory can still be scanned is active again.
// d.mu is held (or the driver not shared yet).
func (d *Driver) loadStates() error {
	if err := os.MkdirAll(d.runDir(), 0o700); err != nil {
		return fmt.Errorf("create storage state directory: %w", err)
	}
	ents, err := os.ReadDir(d.runDir())
	if err != nil {
		return fmt.Errorf("read storage state directory: %w", err)
	}
	boot := bootID()
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".xml")
		if !ok || !e.Type().IsRegular() {
			continue
		}
		def, err := d.readState(filepath.Join(d.runDir(), e.Name()), boot)
		if err == nil && def.Name != name {
			err = fmt.Errorf("state file of pool %q is named %s", def.Name, e.Name())
		}
		if err != nil {
			d.log.Info("dropping storage pool state", "file", e.Name(), "reason", err)
			os.Remove(filepath.Join(d.runDir(), e.Name()))
			continue
		}
		p, _, err := d.add(def, true, false)
		if err != nil {
			d.log.Warn("dropping storage pool state", "file", e.Name(), "err", err)
			os.Remove(filepath.Join(d.runDir(), e.Name()))
			continue
		}
		if err := d.refreshLocked(p); err != nil {
			d.log.Warn("storage pool that ran cannot be restarted", "pool", name, "err", err)
			d.removeState(name)
			d.updateInactive(p)
			continue
		}
		p.active = true
		d.log.Info("storage pool still running", "pool", name)
	}
	return nil
}

func (d *Driver) readState(path, boot string) (*poolDef, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	rest, ok := strings.CutPrefix(string(b), stateHead)
	if !ok {
		return nil, fmt.Errorf("not a pool state file")
	}
	id, doc, ok := strings.Cut(rest, "'>\n")
	if !ok {
		return nil, fmt.Errorf("not a pool state file")
	}
	if boot == "" || id != boot {
		return nil, fmt.Errorf("written in another boot")
	}
	doc, ok = strings.CutSuffix(doc, stateTail)
	if !ok {
		return nil, fmt.Errorf("truncated pool state file")
	}
	return parsePool(doc)
}
