package secret

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
)

// store keeps persistent secrets as libvirt's secret driver does: in one
// directory only root can read (0700), each secret's definition in
// UUID.xml and its value, base64-encoded, in UUID.base64, both 0600.
// Ephemeral secrets never reach it.
type store struct{ dir string }

func openStore(dir string) (*store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create secrets directory: %w", err)
	}
	// MkdirAll keeps the mode of a directory that already exists: make
	// sure nobody else can list or read the secrets.
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("restrict secrets directory: %w", err)
	}
	return &store{dir: dir}, nil
}

func (s *store) configPath(u libvirt.UUID) string {
	return filepath.Join(s.dir, compat.FormatUUID(u)+".xml")
}

func (s *store) valuePath(u libvirt.UUID) string {
	return filepath.Join(s.dir, compat.FormatUUID(u)+".base64")
}

func (s *store) saveConfig(d *def) error {
	doc, err := d.format()
	if err != nil {
		return fmt.Errorf("format secret %s: %w", compat.FormatUUID(d.UUID), err)
	}
	return writeFileAtomic(s.configPath(d.UUID), []byte(doc))
}

func (s *store) saveValue(u libvirt.UUID, value []byte) error {
	return writeFileAtomic(s.valuePath(u), []byte(base64.StdEncoding.EncodeToString(value)))
}

// remove deletes a secret's files; absent ones are no error.
func (s *store) remove(u libvirt.UUID) error {
	for _, p := range []string{s.configPath(u), s.valuePath(u)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", p, err)
		}
	}
	return nil
}

// loaded is one secret read back from the store.
type loaded struct {
	def   *def
	value []byte // nil: no value set
}

// loadAll reads every secret in the directory. A file that cannot be read
// or parsed is skipped and reported, as libvirt logs it and carries on: one
// bad file must not stop the daemon.
func (s *store) loadAll() ([]loaded, []error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, []error{fmt.Errorf("read secrets directory: %w", err)}
	}
	var out []loaded
	var errs []error
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, ".xml") || !e.Type().IsRegular() {
			continue
		}
		l, err := s.load(filepath.Join(s.dir, name))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, l)
	}
	return out, errs
}

func (s *store) load(path string) (loaded, error) {
	doc, err := os.ReadFile(path)
	if err != nil {
		return loaded{}, fmt.Errorf("read secret %s: %w", path, err)
	}
	d, err := parseDef(string(doc))
	if err != nil {
		return loaded{}, fmt.Errorf("parse secret %s: %w", path, err)
	}
	if want := compat.FormatUUID(d.UUID) + ".xml"; filepath.Base(path) != want {
		return loaded{}, fmt.Errorf("secret %s: file name does not match its UUID", path)
	}
	if d.Ephemeral {
		return loaded{}, fmt.Errorf("secret %s: an ephemeral secret cannot be loaded from disk", path)
	}
	l := loaded{def: d}
	b64, err := os.ReadFile(s.valuePath(d.UUID))
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return loaded{}, fmt.Errorf("read value of secret %s: %w", compat.FormatUUID(d.UUID), err)
	default:
		// The decode error says where the data is wrong, never what it is.
		if l.value, err = base64.StdEncoding.DecodeString(strings.TrimSpace(string(b64))); err != nil {
			return loaded{}, fmt.Errorf("value of secret %s is not base64", compat.FormatUUID(d.UUID))
		}
		if l.value == nil {
			l.value = []byte{}
		}
	}
	return l, nil
}

// writeFileAtomic replaces path with data, mode 0600, so that a crash
// leaves the old file or the new one, never half of either.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	ok = true
	return nil
}
