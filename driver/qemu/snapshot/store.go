package snapshot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver/qemu/store"
)

// Store holds every domain's snapshot metadata, in memory for the
// queries and on disk for the next daemon start, as libvirt keeps it:
// ROOT/DOMAIN/SNAPSHOT.xml, each the full definition, the current one
// marked <active>1</active>. Definitions handed out are never modified;
// a change stores a new one.
type Store struct {
	root string
	mu   sync.Mutex
	doms map[string]*tree
}

// Open loads the snapshots under root, creating it if needed.
func Open(root string) (*Store, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("snapshot dir: %w", err)
	}
	s := &Store{root: root, doms: map[string]*tree{}}
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("snapshot dir: %w", err)
	}
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		t, err := s.load(e.Name())
		if err != nil {
			return nil, err
		}
		if len(t.snaps) > 0 {
			s.doms[e.Name()] = t
		}
	}
	return s, nil
}

func (s *Store) load(dom string) (*tree, error) {
	dir := filepath.Join(s.root, dom)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("snapshots of %s: %w", dom, err)
	}
	t := newTree()
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, ".") || !strings.HasSuffix(n, ".xml") || !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return nil, fmt.Errorf("snapshots of %s: %w", dom, err)
		}
		def := &libvirtxml.DomainSnapshot{}
		if err := def.Unmarshal(string(b)); err != nil {
			return nil, fmt.Errorf("snapshot %s/%s: %w", dom, n, err)
		}
		if def.Name != strings.TrimSuffix(n, ".xml") {
			return nil, fmt.Errorf("snapshot %s/%s: it is named %q", dom, n, def.Name)
		}
		cleanDisks(def)
		if def.Active != nil && *def.Active == 1 {
			t.current = def.Name
		}
		def.Active = nil
		t.snaps[def.Name] = def
	}
	return t, nil
}

// cleanDisks drops the empty sources libvirtxml's parser makes.
func cleanDisks(def *libvirtxml.DomainSnapshot) {
	if def.Disks == nil {
		return
	}
	for i := range def.Disks.Disks {
		d := &def.Disks.Disks[i]
		if s := d.Source; s != nil && (s.File == nil || s.File.File == "") && s.Block == nil && s.Network == nil && s.Dir == nil && s.Volume == nil {
			d.Source = nil
		}
	}
}

func (s *Store) path(dom, name string) string { return filepath.Join(s.root, dom, name+".xml") }

// write stores one definition; s.mu is held.
func (s *Store) write(dom string, def *libvirtxml.DomainSnapshot, current bool) error {
	c := *def
	if current {
		one := uint(1)
		c.Active = &one
	} else {
		zero := uint(0)
		c.Active = &zero
	}
	text, err := c.Marshal()
	if err != nil {
		return fmt.Errorf("format snapshot %s: %w", def.Name, err)
	}
	if err := os.MkdirAll(filepath.Join(s.root, dom), 0o700); err != nil {
		return fmt.Errorf("snapshot dir: %w", err)
	}
	if err := store.WriteFileAtomic(s.path(dom, def.Name), []byte(text+"\n"), 0o600); err != nil {
		return fmt.Errorf("save snapshot %s: %w", def.Name, err)
	}
	return nil
}

func errNoSnapshot(name string) error {
	return compat.Errorf(libvirt.ErrNoDomainSnapshot, compat.FromQEMU, "no domain snapshot with matching name '%s'", name)
}

func (s *Store) tree(dom string) *tree {
	if t := s.doms[dom]; t != nil {
		return t
	}
	return newTree()
}

// Count is how many snapshots dom has (none in a nil Store).
func (s *Store) Count(dom string) int {
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.doms[dom].snapsOrNil())
}

func (t *tree) snapsOrNil() map[string]*libvirtxml.DomainSnapshot {
	if t == nil {
		return nil
	}
	return t.snaps
}

// Get returns one snapshot, or libvirt's error if dom has none so named.
func (s *Store) Get(dom, name string) (*libvirtxml.DomainSnapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	def := s.tree(dom).snaps[name]
	if def == nil {
		return nil, errNoSnapshot(name)
	}
	return def, nil
}

// Current returns the current snapshot's name ("" if there is none).
func (s *Store) Current(dom string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tree(dom).current
}

// Names lists dom's snapshots (from == "") or from's children, filtered
// by virDomainSnapshotListFlags (see tree.names).
func (s *Store) Names(dom, from string, flags uint32) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tree(dom)
	if from != "" && t.snaps[from] == nil {
		return nil, errNoSnapshot(from)
	}
	return t.names(from, flags), nil
}

// Descendants lists everything under name, parents first.
func (s *Store) Descendants(dom, name string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tree(dom).descendants(name)
}

// Put adds a snapshot or replaces the one of that name, and makes it the
// current one if makeCurrent. The file is written before the memory
// changes: a snapshot is known once it is on disk.
func (s *Store) Put(dom string, def *libvirtxml.DomainSnapshot, makeCurrent bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.doms[dom]
	if t == nil {
		t = newTree()
	}
	if err := s.write(dom, def, makeCurrent || t.current == def.Name); err != nil {
		return err
	}
	if makeCurrent && t.current != "" && t.current != def.Name {
		if old := t.snaps[t.current]; old != nil {
			if err := s.write(dom, old, false); err != nil {
				return err
			}
		}
	}
	t.snaps[def.Name] = def
	if makeCurrent {
		t.current = def.Name
	}
	s.doms[dom] = t
	return nil
}

// SetCurrent makes name the current snapshot ("" for none).
func (s *Store) SetCurrent(dom, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tree(dom)
	if name != "" && t.snaps[name] == nil {
		return errNoSnapshot(name)
	}
	if t.current == name {
		return nil
	}
	if old := t.snaps[t.current]; old != nil {
		if err := s.write(dom, old, false); err != nil {
			return err
		}
	}
	if name != "" {
		if err := s.write(dom, t.snaps[name], true); err != nil {
			return err
		}
	}
	t.current = name
	return nil
}

// Remove forgets one snapshot. Its children become children of its
// parent, and if it was the current snapshot its parent (if any) becomes
// current, as qemuDomainSnapshotDiscard and the reparenting of
// qemuSnapshotDelete do.
func (s *Store) Remove(dom, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.doms[dom]
	if t == nil || t.snaps[name] == nil {
		return errNoSnapshot(name)
	}
	def := t.snaps[name]
	parent := ParentName(def)
	if t.snaps[parent] == nil {
		parent = ""
	}
	for _, c := range t.children(name) {
		cd := *t.snaps[c]
		cd.Parent = nil
		if parent != "" {
			cd.Parent = &libvirtxml.DomainSnapshotParent{Name: parent}
		}
		if err := s.write(dom, &cd, t.current == c); err != nil {
			return err
		}
		t.snaps[c] = &cd
	}
	wasCurrent := t.current == name
	if wasCurrent && parent != "" {
		if err := s.write(dom, t.snaps[parent], true); err != nil {
			return err
		}
	}
	if err := os.Remove(s.path(dom, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove snapshot %s: %w", name, err)
	}
	delete(t.snaps, name)
	if wasCurrent {
		t.current = parent
	}
	if len(t.snaps) == 0 {
		delete(s.doms, dom)
		os.Remove(filepath.Join(s.root, dom))
	}
	return nil
}

// RemoveAll forgets every snapshot of dom (undefine
// --snapshots-metadata).
func (s *Store) RemoveAll(dom string) error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.RemoveAll(filepath.Join(s.root, dom)); err != nil {
		return fmt.Errorf("remove snapshots of %s: %w", dom, err)
	}
	delete(s.doms, dom)
	return nil
}

// Rename moves dom's snapshots to the domain's new name.
func (s *Store) Rename(dom, to string) error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.doms[dom]
	if t == nil {
		return nil
	}
	if err := os.Rename(filepath.Join(s.root, dom), filepath.Join(s.root, to)); err != nil {
		return fmt.Errorf("move snapshots of %s: %w", dom, err)
	}
	delete(s.doms, dom)
	s.doms[to] = t
	return nil
}
