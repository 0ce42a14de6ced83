package snapshot

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
)

func snap(name, parent, state string, external bool) *libvirtxml.DomainSnapshot {
	d := &libvirtxml.DomainSnapshot{Name: name, State: state, CreationTime: "1700000000"}
	if parent != "" {
		d.Parent = &libvirtxml.DomainSnapshotParent{Name: parent}
	}
	loc := LocationInternal
	if external {
		loc = LocationExternal
	}
	d.Disks = &libvirtxml.DomainSnapshotDisks{Disks: []libvirtxml.DomainSnapshotDisk{{Name: "vda", Snapshot: loc}}}
	return d
}

func code(err error) libvirt.ErrorNumber {
	var ce *compat.Error
	if errors.As(err, &ce) {
		return ce.Code
	}
	return -1
}

// a tree: r1 -> a -> (b, c), r1 -> d (external, disk-only), r2 (shutoff).
func sampleStore(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []*libvirtxml.DomainSnapshot{
		snap("r1", "", StateRunning, false),
		snap("a", "r1", StateRunning, false),
		snap("b", "a", StatePaused, false),
		snap("c", "a", StateRunning, false),
		snap("d", "r1", StateDiskSnapshot, true),
		snap("r2", "", StateShutoff, false),
	} {
		if err := s.Put("dom", d, true); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetCurrent("dom", "c"); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTreeAndFilters(t *testing.T) {
	s := sampleStore(t, t.TempDir())
	cases := []struct {
		from  string
		flags libvirt.DomainSnapshotListFlags
		want  []string
	}{
		{"", 0, []string{"a", "b", "c", "d", "r1", "r2"}},
		{"", libvirt.DomainSnapshotListRoots, []string{"r1", "r2"}},
		{"", libvirt.DomainSnapshotListLeaves, []string{"b", "c", "d", "r2"}},
		{"", libvirt.DomainSnapshotListNoLeaves, []string{"a", "r1"}},
		{"", libvirt.DomainSnapshotListLeaves | libvirt.DomainSnapshotListNoLeaves, []string{"a", "b", "c", "d", "r1", "r2"}},
		{"", libvirt.DomainSnapshotListMetadata, []string{"a", "b", "c", "d", "r1", "r2"}},
		{"", libvirt.DomainSnapshotListNoMetadata, []string{}},
		{"", libvirt.DomainSnapshotListInactive, []string{"r2"}},
		{"", libvirt.DomainSnapshotListDiskOnly, []string{"d"}},
		{"", libvirt.DomainSnapshotListActive, []string{"a", "b", "c", "r1"}},
		{"", libvirt.DomainSnapshotListExternal, []string{"d"}},
		{"", libvirt.DomainSnapshotListInternal, []string{"a", "b", "c", "r1", "r2"}},
		{"", libvirt.DomainSnapshotListTopological, []string{"r1", "a", "b", "c", "d", "r2"}},
		{"r1", 0, []string{"a", "d"}},
		{"r1", libvirt.DomainSnapshotListDescendants, []string{"a", "b", "c", "d"}},
		{"r1", libvirt.DomainSnapshotListDescendants | libvirt.DomainSnapshotListLeaves, []string{"b", "c", "d"}},
		{"b", 0, []string{}},
	}
	for _, c := range cases {
		got, err := s.Names("dom", c.from, uint32(c.flags))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("Names(%q, %#x) = %v, want %v", c.from, c.flags, got, c.want)
		}
	}
	if _, err := s.Names("dom", "nope", 0); code(err) != libvirt.ErrNoDomainSnapshot {
		t.Errorf("children of a missing snapshot: %v", err)
	}
	if _, err := s.Get("dom", "nope"); code(err) != libvirt.ErrNoDomainSnapshot || !strings.Contains(err.Error(), "no domain snapshot with matching name 'nope'") {
		t.Errorf("Get missing: %v", err)
	}
	if n := s.Count("other"); n != 0 {
		t.Errorf("Count of a domain without snapshots = %d", n)
	}
}

func TestRemoveReparentsAndMovesCurrent(t *testing.T) {
	dir := t.TempDir()
	s := sampleStore(t, dir)
	if err := s.Remove("dom", "a"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Names("dom", "r1", 0); !reflect.DeepEqual(got, []string{"b", "c", "d"}) {
		t.Errorf("r1's children after removing a: %v", got)
	}
	if err := s.Remove("dom", "c"); err != nil {
		t.Fatal(err)
	}
	if cur := s.Current("dom"); cur != "r1" {
		t.Errorf("current after removing the current snapshot = %q, want its parent r1", cur)
	}
	if _, err := os.Stat(filepath.Join(dir, "dom", "c.xml")); !os.IsNotExist(err) {
		t.Errorf("c.xml still exists: %v", err)
	}
	// The store on disk says the same after a restart.
	s2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := s2.Names("dom", "", uint32(libvirt.DomainSnapshotListTopological)); !reflect.DeepEqual(got, []string{"r1", "b", "d", "r2"}) {
		t.Errorf("after reopening: %v", got)
	}
	if cur := s2.Current("dom"); cur != "r1" {
		t.Errorf("current after reopening = %q", cur)
	}
	if err := s2.RemoveAll("dom"); err != nil {
		t.Fatal(err)
	}
	if s2.Count("dom") != 0 {
		t.Error("snapshots left after RemoveAll")
	}
	if _, err := os.Stat(filepath.Join(dir, "dom")); !os.IsNotExist(err) {
		t.Errorf("domain dir left after RemoveAll: %v", err)
	}
}

func TestStorePersistsAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	s := sampleStore(t, dir)
	want, _ := s.Get("dom", "d")
	s2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s2.Count("dom") != 6 || s2.Current("dom") != "c" {
		t.Fatalf("after reopening: %d snapshots, current %q", s2.Count("dom"), s2.Current("dom"))
	}
	got, err := s2.Get("dom", "d")
	if err != nil {
		t.Fatal(err)
	}
	got.XMLName = want.XMLName
	if !reflect.DeepEqual(got, want) {
		t.Errorf("reloaded definition differs:\n%+v\n%+v", got, want)
	}
	// A file named otherwise than the snapshot in it is refused.
	os.WriteFile(filepath.Join(dir, "dom", "x.xml"), []byte("<domainsnapshot><name>y</name></domainsnapshot>"), 0o600)
	if _, err := Open(dir); err == nil {
		t.Error("Open accepted a snapshot file under another name")
	}
}

func TestParse(t *testing.T) {
	now := func() time.Time { return time.Unix(1700000123, 0) }
	def, err := Parse("<domainsnapshot><description>d</description><disks><disk name='vda' snapshot='internal'/><disk name='vdb'><source file='/x/o.qcow2'/></disk></disks></domainsnapshot>", ParseOptions{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if def.Name != "1700000123" || def.CreationTime != "1700000123" {
		t.Errorf("generated name/time: %q %q", def.Name, def.CreationTime)
	}
	if d := def.Disks.Disks; d[0].Source != nil || d[1].Snapshot != LocationExternal || d[1].Source.File.File != "/x/o.qcow2" {
		t.Errorf("disks: %+v", d)
	}
	bad := []struct {
		xml  string
		o    ParseOptions
		code libvirt.ErrorNumber
		msg  string
	}{
		{"<domain/>", ParseOptions{}, libvirt.ErrXMLError, "expecting root element of 'domainsnapshot', not 'domain'"},
		{"<domainsnapshot>", ParseOptions{}, libvirt.ErrXMLDetail, "(domain_snapshot)"},
		{"<domainsnapshot><memory snapshot='bogus'/></domainsnapshot>", ParseOptions{}, libvirt.ErrXMLError, "Invalid value for attribute 'snapshot' in element 'memory': 'bogus'."},
		{"<domainsnapshot><memory snapshot='external'/></domainsnapshot>", ParseOptions{}, libvirt.ErrXMLError, "external memory snapshots require a filename"},
		{"<domainsnapshot><memory snapshot='internal'/></domainsnapshot>", ParseOptions{Offline: true}, libvirt.ErrXMLError, "memory state cannot be saved with offline or disk-only snapshot"},
		{"<domainsnapshot><disks><disk snapshot='internal'/></disks></domainsnapshot>", ParseOptions{}, libvirt.ErrXMLError, "missing name from disk snapshot element"},
		{"<domainsnapshot><disks><disk name='vda' snapshot='internal'><source file='/a'/></disk></disks></domainsnapshot>", ParseOptions{}, libvirt.ErrXMLError, "requires use of external snapshot mode"},
		{"<domainsnapshot><state>running</state></domainsnapshot>", ParseOptions{Redefine: true}, libvirt.ErrXMLError, "a redefined snapshot must have a name"},
		{"<domainsnapshot><name>s</name><state>running</state></domainsnapshot>", ParseOptions{Redefine: true}, libvirt.ErrXMLError, "missing creationTime from existing snapshot"},
		{"<domainsnapshot><name>s</name><creationTime>1</creationTime><state>weird</state></domainsnapshot>", ParseOptions{Redefine: true}, libvirt.ErrXMLError, "Invalid state 'weird'"},
	}
	for _, b := range bad {
		_, err := Parse(b.xml, b.o)
		if code(err) != b.code || err == nil || !strings.Contains(err.Error(), b.msg) {
			t.Errorf("Parse(%s) = %v, want code %d with %q", b.xml, err, b.code, b.msg)
		}
	}
}

func TestFormatLibvirtOrder(t *testing.T) {
	def := snap("s1", "s0", StateRunning, false)
	def.Description = "first"
	def.Memory = &libvirtxml.DomainSnapshotMemory{Snapshot: LocationInternal}
	out, err := Format(def, "<domain type='qemu'>\n  <name>g</name>\n</domain>\n")
	if err != nil {
		t.Fatal(err)
	}
	want := `<domainsnapshot>
  <name>s1</name>
  <description>first</description>
  <state>running</state>
  <parent>
    <name>s0</name>
  </parent>
  <creationTime>1700000000</creationTime>
  <memory snapshot='internal'/>
  <disks>
    <disk name='vda' snapshot='internal'/>
  </disks>
  <domain type='qemu'>
    <name>g</name>
  </domain>
</domainsnapshot>
`
	if out != want {
		t.Errorf("Format:\n%s\nwant:\n%s", out, want)
	}
}
