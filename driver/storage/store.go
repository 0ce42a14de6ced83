package storage

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/govirtd/govirtd/compat"
)

// configHeader is what libvirt writes at the top of a saved pool file.
const configHeader = `<!--
WARNING: THIS IS AN AUTO-GENERATED FILE. CHANGES TO IT ARE LIKELY TO BE
OVERWRITTEN AND LOST. Changes to this xml configuration should be made using:
  virsh pool-edit %s
or other application using the libvirt API.
-->

`

func (d *Driver) configPath(name string) string { return filepath.Join(d.dir, name+".xml") }
func (d *Driver) autostartPath(name string) string {
	return filepath.Join(d.autostartDir(), name+".xml")
}

// saveConfig writes the pool's definition, mode 0600, atomically.
func (d *Driver) saveConfig(def *poolDef) error {
	// The saved definition is the configuration: no live figures.
	c := *def
	c.Capacity, c.Allocation, c.Available = 0, 0, 0
	data := fmt.Sprintf(configHeader, def.Name) + c.format()
	path := d.configPath(def.Name)
	f, err := os.CreateTemp(d.dir, "."+def.Name+".xml.tmp*")
	if err != nil {
		return fmt.Errorf("save storage pool %s: %w", def.Name, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if _, err := f.WriteString(data); err != nil {
		f.Close()
		return fmt.Errorf("save storage pool %s: %w", def.Name, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("save storage pool %s: %w", def.Name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("save storage pool %s: %w", def.Name, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("save storage pool %s: %w", def.Name, err)
	}
	return nil
}

// saveAutostart sets or clears the autostart symlink, as libvirt's
// storage/autostart/NAME.xml pointing at the config file.
func (d *Driver) saveAutostart(name string, on bool) error {
	link := d.autostartPath(name)
	if !on {
		if err := os.Remove(link); err != nil && !os.IsNotExist(err) {
			return systemError(err, "Failed to delete symlink '%s'", link)
		}
		return nil
	}
	_ = os.Remove(link)
	if err := os.Symlink(d.configPath(name), link); err != nil {
		return systemError(err, "Failed to create symlink '%s' to '%s'", link, d.configPath(name))
	}
	return nil
}

// loadConfigs reads the persistent pools. A file that cannot be read or
// parsed, or whose name is not its pool's, is skipped and logged, as
// libvirt does: one bad file must not stop the daemon.
func (d *Driver) loadConfigs() error {
	ents, err := os.ReadDir(d.dir)
	if err != nil {
		return fmt.Errorf("read storage pool definitions: %w", err)
	}
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".xml")
		if !ok || !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(d.dir, e.Name()))
		if err != nil {
			d.log.Warn("skipping unreadable storage pool definition", "file", e.Name(), "err", err)
			continue
		}
		def, err := parsePool(string(b))
		if err != nil || def.Name != name {
			d.log.Warn("skipping unusable storage pool definition", "file", e.Name(), "err", err)
			continue
		}
		if other := d.byUUID(def.UUID); other != nil {
			d.log.Warn("skipping storage pool definition with a UUID already in use", "file", e.Name(), "uuid", compat.FormatUUID(def.UUID))
			continue
		}
		target, _ := os.Readlink(d.autostartPath(name))
		d.pools[name] = &pool{def: def, persistent: true, autostart: target == d.configPath(name)}
	}
	return nil
}

func removeFile(path string) error {
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}
