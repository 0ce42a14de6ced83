package network

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"libvirt.org/go/libvirtxml"
)

// configHeader is what libvirt writes at the top of a saved network file.
const configHeader = `<!--
WARNING: THIS IS AN AUTO-GENERATED FILE. CHANGES TO IT ARE LIKELY TO BE
OVERWRITTEN AND LOST. Changes to this xml configuration should be made using:
  virsh net-edit %s
or other application using the libvirt API.
-->

`

func (d *Driver) configPath(name string) string { return filepath.Join(d.configDir(), name+".xml") }
func (d *Driver) autostartPath(name string) string {
	return filepath.Join(d.autostartDir(), name+".xml")
}
func (d *Driver) statusPath(name string) string { return filepath.Join(d.runDir(), name+".xml") }

// writeAtomic replaces path with data, never leaving a half-written file.
func writeAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func (d *Driver) saveConfig(def *libvirtxml.Network) error {
	x, err := format(def)
	if err != nil {
		return err
	}
	if err := writeAtomic(d.configPath(def.Name), []byte(fmt.Sprintf(configHeader, def.Name)+x)); err != nil {
		return fmt.Errorf("save network %s: %w", def.Name, err)
	}
	return nil
}

// saveAutostart marks the network autostarted, as libvirt's symlink in
// networks/autostart does.
func (d *Driver) saveAutostart(name string, on bool) error {
	p := d.autostartPath(name)
	if !on {
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("unset autostart of network %s: %w", name, err)
		}
		return nil
	}
	os.Remove(p)
	if err := os.Symlink(d.configPath(name), p); err != nil {
		return fmt.Errorf("set autostart of network %s: %w", name, err)
	}
	return nil
}

// saveStatus records a running network's live definition, so that a
// restarted daemon knows it runs and how to stop it.
func (d *Driver) saveStatus(o *object) error {
	x, err := o.live.Marshal()
	if err != nil {
		return err
	}
	if err := writeAtomic(d.statusPath(o.def.Name), []byte(x)); err != nil {
		return fmt.Errorf("save status of network %s: %w", o.def.Name, err)
	}
	return nil
}

// loadConfigs reads the persistent definitions and the statuses of the
// networks that ran when the daemon stopped (transient ones included).
func (d *Driver) loadConfigs() error {
	ents, err := os.ReadDir(d.configDir())
	if err != nil {
		return fmt.Errorf("read network definitions: %w", err)
	}
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".xml")
		if !ok || e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(d.configDir(), e.Name()))
		if err != nil {
			return fmt.Errorf("read network %s: %w", name, err)
		}
		def, err := parse(string(b))
		if err != nil || def.Name != name {
			d.log.Warn("ignoring unusable network definition", "file", e.Name(), "err", err)
			continue
		}
		_, aerr := os.Lstat(d.autostartPath(name))
		d.byName[name] = &object{def: def, persistent: true, autostart: aerr == nil}
	}
	return nil
}
