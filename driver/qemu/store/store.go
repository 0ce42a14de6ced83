// Package store keeps the QEMU driver's state on disk: persistent domain
// definitions, autostart marks, and the status of running domains (enough
// to find and manage a QEMU process again after the daemon restarts).
//
// Every write goes through a temporary file, fsync and rename, so a crash at
// any moment leaves either the old or the new file, never a torn one.
//
// Layout under the state directory:
//
//	qemu/domains/NAME.xml     persistent definitions (inactive XML)
//	qemu/autostart/NAME       autostart marks (empty files)
//	qemu/status/NAME.json     status of running domains, incl. the live XML
//	qemu/run/domain-ID-NAME/  per-process runtime dirs (monitor socket, key)
//	qemu/log/NAME.log         QEMU's stdout/stderr, as libvirt's qemu logs
//	qemu/save/NAME.save       managed save images (virsh managedsave)
package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Store is the on-disk state of one driver instance.
type Store struct {
	root string
}

// Open prepares the directories under stateDir.
func Open(stateDir string) (*Store, error) {
	s := &Store{root: filepath.Join(stateDir, "qemu")}
	for _, d := range []string{"domains", "autostart", "status", "run", "log", "save"} {
		if err := os.MkdirAll(filepath.Join(s.root, d), 0o700); err != nil {
			return nil, fmt.Errorf("state dir: %w", err)
		}
	}
	return s, nil
}

// Status is what the daemon must remember about a running domain.
type Status struct {
	Name       string `json:"name"`
	UUID       string `json:"uuid"`
	ID         int32  `json:"id"`
	PID        int    `json:"pid"`
	StartTime  uint64 `json:"start_time"` // /proc/PID/stat field 22: tells a reused pid apart
	Monitor    string `json:"monitor"`    // QMP socket path
	RunDir     string `json:"run_dir"`
	State      int32  `json:"state"`
	Reason     int32  `json:"reason"`
	Persistent bool   `json:"persistent"`
	LiveXML    string `json:"live_xml"`
	// Job is the migration phase in progress, if any, so that a restarted
	// daemon can finish or undo it (see the migration state machine).
	Job json.RawMessage `json:"job,omitempty"`
}

func (s *Store) defPath(name string) string { return filepath.Join(s.root, "domains", name+".xml") }
func (s *Store) autostartPath(name string) string {
	return filepath.Join(s.root, "autostart", name)
}
func (s *Store) statusPath(name string) string {
	return filepath.Join(s.root, "status", name+".json")
}

// RunDir returns the runtime directory for a domain process.
func (s *Store) RunDir(id int32, name string) string {
	return filepath.Join(s.root, "run", fmt.Sprintf("domain-%d-%s", id, name))
}

// ChannelDir returns where a running domain's unix channel sockets go
// (libvirt: channel/target/domain-ID-NAME in its state directory).
func (s *Store) ChannelDir(id int32, name string) string {
	return filepath.Join(s.ChannelRoot(), fmt.Sprintf("domain-%d-%s", id, name))
}

// ChannelRoot is the directory holding every domain's ChannelDir.
func (s *Store) ChannelRoot() string { return filepath.Join(s.root, "channel", "target") }

// SwtpmRoot is where the domains' emulated TPM states live, one
// directory per UUID.
func (s *Store) SwtpmRoot() string { return filepath.Join(s.root, "swtpm") }

// LogDir is where the domains' logs go.
func (s *Store) LogDir() string { return filepath.Join(s.root, "log") }

// ManagedSavePath is where a domain's managed save image lives (libvirt's
// /var/lib/libvirt/qemu/save/NAME.save).
func (s *Store) ManagedSavePath(name string) string {
	return filepath.Join(s.root, "save", name+".save")
}

// LogPath returns where a domain's QEMU output goes.
func (s *Store) LogPath(name string) string { return filepath.Join(s.root, "log", name+".log") }

// SaveDefinition stores a persistent definition.
func (s *Store) SaveDefinition(name, xml string) error {
	if err := WriteFileAtomic(s.defPath(name), []byte(xml), 0o600); err != nil {
		return fmt.Errorf("save definition of %s: %w", name, err)
	}
	return nil
}

// RemoveDefinition deletes a persistent definition and its autostart mark.
func (s *Store) RemoveDefinition(name string) error {
	if err := removeIfExists(s.autostartPath(name)); err != nil {
		return err
	}
	if err := removeIfExists(s.defPath(name)); err != nil {
		return fmt.Errorf("remove definition of %s: %w", name, err)
	}
	return syncDir(filepath.Join(s.root, "domains"))
}

// RenameDefinition stores a domain's definition under its new name and
// then removes the old one, moving its autostart mark along. A crash in
// between leaves both definitions (same UUID; the driver keeps the newer
// on load), never neither.
func (s *Store) RenameDefinition(oldName, newName, xml string) error {
	if err := s.SaveDefinition(newName, xml); err != nil {
		return err
	}
	if s.Autostart(oldName) {
		if err := s.SetAutostart(newName, true); err != nil {
			return err
		}
	}
	return s.RemoveDefinition(oldName)
}

// DefinitionModTime is when a definition was last written.
func (s *Store) DefinitionModTime(name string) (time.Time, error) {
	fi, err := os.Stat(s.defPath(name))
	if err != nil {
		return time.Time{}, err
	}
	return fi.ModTime(), nil
}

// Definitions returns every stored definition by name.
func (s *Store) Definitions() (map[string]string, error) {
	return readAll(s, "domains", ".xml", func(b []byte) (string, error) { return string(b), nil })
}

// SetAutostart sets or clears a domain's autostart mark.
func (s *Store) SetAutostart(name string, on bool) error {
	if !on {
		return removeIfExists(s.autostartPath(name))
	}
	return WriteFileAtomic(s.autostartPath(name), nil, 0o600)
}

// Autostart reports whether a domain is marked for autostart.
func (s *Store) Autostart(name string) bool {
	_, err := os.Stat(s.autostartPath(name))
	return err == nil
}

// SaveStatus records a running domain's status.
func (s *Store) SaveStatus(st *Status) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	// Not fsynced: a status describes QEMU processes, which a machine
	// crash ends too (libvirt keeps its status files on tmpfs, /run). The
	// rename alone keeps the file whole across a daemon crash, and saves
	// the ~2 ms of two fsyncs on every step of a migration.
	if err := replaceFile(s.statusPath(st.Name), b, 0o600, false); err != nil {
		return fmt.Errorf("save status of %s: %w", st.Name, err)
	}
	return nil
}

// RemoveStatus forgets a domain's status (it is no longer running).
func (s *Store) RemoveStatus(name string) error {
	return removeIfExists(s.statusPath(name))
}

// Statuses returns every stored status by domain name. A status file that
// cannot be parsed is reported, not skipped: it names a QEMU that may still
// be running.
func (s *Store) Statuses() (map[string]*Status, error) {
	return readAll(s, "status", ".json", func(b []byte) (*Status, error) {
		var st Status
		err := json.Unmarshal(b, &st)
		return &st, err
	})
}

// readAll parses every NAME+ext file in dir. Temporary files left by an
// interrupted write start with a dot and are ignored.
func readAll[T any](s *Store, dir, ext string, parse func([]byte) (T, error)) (map[string]T, error) {
	entries, err := os.ReadDir(filepath.Join(s.root, dir))
	if err != nil {
		return nil, err
	}
	out := map[string]T{}
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, ".") || !strings.HasSuffix(n, ext) || !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.root, dir, n))
		if err != nil {
			return nil, err
		}
		v, err := parse(b)
		if err != nil {
			return nil, fmt.Errorf("%s/%s: %w", dir, n, err)
		}
		out[strings.TrimSuffix(n, ext)] = v
	}
	return out, nil
}

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// WriteFileAtomic writes data to path through a temporary file in the same
// directory, fsyncs it, renames it over path and fsyncs the directory.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	return replaceFile(path, data, perm, true)
}

// replaceFile writes data to a temporary file in path's directory and
// renames it over path, so readers see the old or the new file, never a
// part; durable adds the fsyncs that make it survive a machine crash.
func replaceFile(path string, data []byte, perm os.FileMode, durable bool) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if durable {
		if err := tmp.Sync(); err != nil {
			tmp.Close()
			return err
		}
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if !durable {
		return nil
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
