package qemu

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver"
	"github.com/govirtd/govirtd/driver/qemu/domainxml"
	"github.com/govirtd/govirtd/driver/qemu/store"
)

// testDriver is a Driver with a store and no host or QEMU: enough for the
// calls that only edit definitions.
type testDriver struct {
	*Driver
	mu     sync.Mutex
	events []driver.Event
}

func newTestDriver(t *testing.T, dir string) *testDriver {
	t.Helper()
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	td := &testDriver{Driver: &Driver{store: st, log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		byUUID: map[libvirt.UUID]*domain{}, byName: map[string]*domain{}, ctx: ctx, cancel: cancel}}
	td.SetEventSink(func(ev driver.Event) {
		td.mu.Lock()
		td.events = append(td.events, ev)
		td.mu.Unlock()
	})
	return td
}

const testUUID = "8f3a1c2e-5b6d-4e7f-9a0b-1c2d3e4f5a6b"

// define stores and registers a shut off persistent domain.
func (td *testDriver) define(t *testing.T, name string) libvirt.Domain {
	t.Helper()
	def, err := domainxml.Parse("<domain type='qemu'><name>" + name + "</name><uuid>" + testUUID + "</uuid><memory unit='KiB'>131072</memory><os><type arch='x86_64'>hvm</type></os></domain>")
	if err != nil {
		t.Fatal(err)
	}
	text, err := domainxml.Format(def, domainxml.FormatOptions{Inactive: true, Secure: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := td.store.SaveDefinition(name, text); err != nil {
		t.Fatal(err)
	}
	uuid, _ := parseUUID(testUUID)
	dom := newDomain(name, uuid)
	dom.def, dom.persistent = def, true
	td.add(dom)
	return dom.ref()
}

func (td *testDriver) takeEvents() []driver.Event {
	td.mu.Lock()
	defer td.mu.Unlock()
	ev := td.events
	td.events = nil
	return ev
}

func str(s string) *string { return &s }

func wantLibvirtErr(t *testing.T, err error, code libvirt.ErrorNumber, msg string) {
	t.Helper()
	if !compat.Is(err, code) {
		t.Fatalf("err = %v, want code %d (%s)", err, code, msg)
	}
	if got := compat.As(err).Message(); got != msg {
		t.Errorf("message %q, want %q", got, msg)
	}
}

func TestMetadataOfInactiveDomain(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	td := newTestDriver(t, dir)
	ref := td.define(t, "m1")

	_, err := td.GetMetadata(ctx, ref, metaTitle, nil, 0)
	wantLibvirtErr(t, err, libvirt.ErrNoDomainMetadata, "metadata not found: Requested metadata element is not present")

	if err := td.SetMetadata(ctx, ref, driver.MetadataArgs{Type: metaTitle, Metadata: str("My title")}); err != nil {
		t.Fatal(err)
	}
	if err := td.SetMetadata(ctx, ref, driver.MetadataArgs{Type: metaDescription, Metadata: str("line 1\nline 2"), Flags: affectConfig}); err != nil {
		t.Fatal(err)
	}
	if err := td.SetMetadata(ctx, ref, driver.MetadataArgs{Type: metaElement, Metadata: str("<info><owner>alice</owner></info>"), Key: str("app"), URI: str("urn:app")}); err != nil {
		t.Fatal(err)
	}
	if got, err := td.GetMetadata(ctx, ref, metaTitle, nil, affectConfig); err != nil || got != "My title" {
		t.Errorf("title %q, %v", got, err)
	}
	if got, err := td.GetMetadata(ctx, ref, metaDescription, nil, 0); err != nil || got != "line 1\nline 2" {
		t.Errorf("description %q, %v", got, err)
	}
	if got, err := td.GetMetadata(ctx, ref, metaElement, str("urn:app"), 0); err != nil || got != "<info>\n  <owner>alice</owner>\n</info>" {
		t.Errorf("element %q, %v", got, err)
	}

	// What is stored is libvirt's XML.
	stored, _ := os.ReadFile(dir + "/qemu/domains/m1.xml")
	for _, want := range []string{"<title>My title</title>", "<description>line 1\nline 2</description>",
		"  <metadata>\n    <app:info xmlns:app=\"urn:app\">\n      <app:owner>alice</app:owner>\n    </app:info>\n  </metadata>\n"} {
		if !strings.Contains(string(stored), want) {
			t.Errorf("stored definition lacks %q:\n%s", want, stored)
		}
	}
	// And a restarted driver reads it back.
	td2 := newTestDriver(t, dir)
	if err := td2.load(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := td2.GetMetadata(ctx, ref, metaElement, str("urn:app"), 0); err != nil || got != "<info>\n  <owner>alice</owner>\n</info>" {
		t.Errorf("after reload: element %q, %v", got, err)
	}

	evs := td.takeEvents()
	if len(evs) != 3 || evs[0].ID != libvirt.DomainEventIDMetadataChange || evs[0].MetadataType != metaTitle || evs[2].MetadataURI != "urn:app" {
		t.Errorf("events %+v", evs)
	}

	// Removing: an empty title is none; the element goes away.
	td.SetMetadata(ctx, ref, driver.MetadataArgs{Type: metaTitle, Metadata: str("")})
	_, err = td.GetMetadata(ctx, ref, metaTitle, nil, 0)
	wantLibvirtErr(t, err, libvirt.ErrNoDomainMetadata, "metadata not found: Requested metadata element is not present")
	if err := td.SetMetadata(ctx, ref, driver.MetadataArgs{Type: metaElement, URI: str("urn:app")}); err != nil {
		t.Fatal(err)
	}
	_, err = td.GetMetadata(ctx, ref, metaElement, str("urn:app"), 0)
	wantLibvirtErr(t, err, libvirt.ErrNoDomainMetadata, "metadata not found: Requested metadata element is not present")
}

func TestMetadataErrors(t *testing.T) {
	ctx := context.Background()
	td := newTestDriver(t, t.TempDir())
	ref := td.define(t, "m2")
	for _, c := range []struct {
		a    driver.MetadataArgs
		code libvirt.ErrorNumber
		msg  string
	}{
		{driver.MetadataArgs{Type: metaTitle, Metadata: str("a\nb")}, libvirt.ErrInvalidArg, "invalid argument: metadata title can't contain newlines"},
		{driver.MetadataArgs{Type: metaTitle, Metadata: str("a"), URI: str("u")}, libvirt.ErrInvalidArg, "invalid argument: uri in virDomainSetMetadata must be NULL"},
		{driver.MetadataArgs{Type: metaElement, Metadata: str("<a/>")}, libvirt.ErrInvalidArg, "invalid argument: uri in virDomainSetMetadata must not be NULL"},
		{driver.MetadataArgs{Type: metaElement, Metadata: str("<a/>"), URI: str("u")}, libvirt.ErrInvalidArg, "invalid argument: key in virDomainSetMetadata must not be NULL"},
		{driver.MetadataArgs{Type: metaElement, Metadata: str("<a>"), Key: str("k"), URI: str("u")}, libvirt.ErrXMLDetail, "(metadata_xml):1: Premature end of data"},
		{driver.MetadataArgs{Type: metaTitle, Metadata: str("t"), Flags: affectLive}, libvirt.ErrOperationInvalid, "Requested operation is not valid: domain is not running"},
		{driver.MetadataArgs{Type: 7, Metadata: str("t")}, libvirt.ErrInvalidArg, "invalid argument: unknown metadata type '7'"},
		{driver.MetadataArgs{Type: metaTitle, Metadata: str("t"), Flags: 4}, libvirt.ErrInvalidArg, "invalid argument: unsupported flags (0x4) in function virDomainObjSetMetadata"},
	} {
		err := td.SetMetadata(ctx, ref, c.a)
		if !compat.Is(err, c.code) || compat.As(err).Message() != c.msg {
			t.Errorf("SetMetadata(%+v) = %v, want %q", c.a, err, c.msg)
		}
	}
	_, err := td.GetMetadata(ctx, ref, metaTitle, nil, affectLive|affectConfig)
	wantLibvirtErr(t, err, libvirt.ErrInvalidArg, "invalid argument: Flags 'VIR_DOMAIN_AFFECT_LIVE' and 'VIR_DOMAIN_AFFECT_CONFIG' are mutually exclusive")
	_, err = td.GetMetadata(ctx, ref, metaElement, nil, 0)
	wantLibvirtErr(t, err, libvirt.ErrInvalidArg, "invalid argument: uri in virDomainGetMetadata must not be NULL")
	_, err = td.GetMetadata(ctx, libvirt.Domain{Name: "nope"}, metaTitle, nil, 0)
	if !compat.Is(err, libvirt.ErrNoDomain) {
		t.Errorf("unknown domain: %v", err)
	}
	if evs := td.takeEvents(); len(evs) != 0 {
		t.Errorf("failed calls emitted %+v", evs)
	}
}

func TestMetadataLiveAndConfigApart(t *testing.T) {
	ctx := context.Background()
	td := newTestDriver(t, t.TempDir())
	ref := td.define(t, "m3")
	dom, _ := td.get(ref)
	// Pretend it runs (no QEMU: saveStatus has nothing to save).
	live, _ := cloneDef(dom.def)
	dom.mu.Lock()
	dom.live, dom.id, dom.state = live, 5, libvirt.DomainRunning
	dom.mu.Unlock()

	if err := td.SetMetadata(ctx, ref, driver.MetadataArgs{Type: metaDescription, Metadata: str("live only")}); err != nil {
		t.Fatal(err)
	}
	if err := td.SetMetadata(ctx, ref, driver.MetadataArgs{Type: metaDescription, Metadata: str("config only"), Flags: affectConfig}); err != nil {
		t.Fatal(err)
	}
	if got, _ := td.GetMetadata(ctx, ref, metaDescription, nil, 0); got != "live only" {
		t.Errorf("current (live) = %q", got)
	}
	if got, _ := td.GetMetadata(ctx, ref, metaDescription, nil, affectConfig); got != "config only" {
		t.Errorf("config = %q", got)
	}
	if err := td.SetMetadata(ctx, ref, driver.MetadataArgs{Type: metaTitle, Metadata: str("both"), Flags: affectLive | affectConfig}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []uint32{affectLive, affectConfig} {
		if got, _ := td.GetMetadata(ctx, ref, metaTitle, nil, f); got != "both" {
			t.Errorf("title (flags %d) = %q", f, got)
		}
	}
	// A running domain cannot be renamed.
	err := td.Rename(ctx, ref, str("other"), 0)
	wantLibvirtErr(t, err, libvirt.ErrOperationInvalid, "Requested operation is not valid: cannot rename active domain")
}

func TestRename(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	td := newTestDriver(t, dir)
	ref := td.define(t, "r1")
	td.store.SetAutostart("r1", true)
	td.takeEvents()

	if err := td.Rename(ctx, ref, str("r2"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := td.LookupByName(ctx, "r1"); !compat.Is(err, libvirt.ErrNoDomain) {
		t.Errorf("old name still found: %v", err)
	}
	got, err := td.LookupByName(ctx, "r2")
	if err != nil || got.UUID != ref.UUID {
		t.Fatalf("new name: %+v, %v", got, err)
	}
	if x, _ := td.GetXMLDesc(ctx, got, libvirt.DomainXMLInactive); !strings.Contains(x, "<name>r2</name>") {
		t.Errorf("XML after rename:\n%s", x)
	}
	defs, _ := td.store.Definitions()
	if _, ok := defs["r1"]; ok || !strings.Contains(defs["r2"], "<name>r2</name>") || !td.store.Autostart("r2") {
		t.Errorf("store after rename: %v autostart %v", defs, td.store.Autostart("r2"))
	}
	evs := td.takeEvents()
	if len(evs) != 2 || evs[0].Dom.Name != "r1" || evs[0].Event != int32(libvirt.DomainEventUndefined) || evs[0].Detail != int32(libvirt.DomainEventUndefinedRenamed) ||
		evs[1].Dom.Name != "r2" || evs[1].Event != int32(libvirt.DomainEventDefined) || evs[1].Detail != int32(libvirt.DomainEventDefinedRenamed) {
		t.Errorf("events %+v", evs)
	}

	// Same name: nothing to do; bad arguments.
	err = td.Rename(ctx, got, str("r2"), 0)
	if err != nil {
		t.Errorf("rename to its own name: %v", err)
	}
	err = td.Rename(ctx, got, nil, 0)
	wantLibvirtErr(t, err, libvirt.ErrInvalidArg, "invalid argument: new_name in virDomainRename must not be NULL")
	err = td.Rename(ctx, got, str("a/b"), 0)
	wantLibvirtErr(t, err, libvirt.ErrXMLError, "XML error: name a/b cannot contain '/'")
}

func TestRenameNameTakenAndTransient(t *testing.T) {
	ctx := context.Background()
	td := newTestDriver(t, t.TempDir())
	ref := td.define(t, "a")
	uuid2, _ := parseUUID("11111111-2222-3333-4444-555555555555")
	other := newDomain("b", uuid2)
	other.def, other.persistent = td.byName["a"].def, true
	td.add(other)
	err := td.Rename(ctx, ref, str("b"), 0)
	wantLibvirtErr(t, err, libvirt.ErrOperationFailed, "operation failed: domain with name 'b' already exists")

	trans := newDomain("t", libvirt.UUID{9})
	trans.id, trans.live = 3, other.def
	td.add(trans)
	trans.id = -1 // shut off but transient: not renamable
	err = td.Rename(ctx, trans.ref(), str("t2"), 0)
	wantLibvirtErr(t, err, libvirt.ErrOperationInvalid, "Requested operation is not valid: cannot rename a transient domain")
}

// A crash between writing the new definition and removing the old one
// leaves both; the next start keeps the newer and removes the older.
func TestLoadFinishesInterruptedRename(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	td := newTestDriver(t, dir)
	td.define(t, "before")
	dom, _ := td.LookupByName(ctx, "before")
	d, _ := td.get(dom)
	c, _ := cloneDef(d.def)
	c.Name = "after"
	text, _ := domainxml.Format(c, domainxml.FormatOptions{Inactive: true, Secure: true})
	// Crash point: the new file is written, nothing else.
	if err := td.store.SaveDefinition("after", text); err != nil {
		t.Fatal(err)
	}
	// The old file is older: by a minute rather than by a sleep, which a
	// coarse file clock on a loaded machine can swallow.
	olds, _ := filepath.Glob(filepath.Join(dir, "*", "before.xml"))
	olds2, _ := filepath.Glob(filepath.Join(dir, "*", "*", "before.xml"))
	olds = append(olds, olds2...)
	if len(olds) != 1 {
		t.Fatalf("old definition file: %v", olds)
	}
	past := time.Now().Add(-time.Minute)
	if err := os.Chtimes(olds[0], past, past); err != nil {
		t.Fatal(err)
	}

	td2 := newTestDriver(t, dir)
	if err := td2.load(ctx); err != nil {
		t.Fatal(err)
	}
	doms, _ := td2.ListAllDomains(ctx, 0)
	if len(doms) != 1 || doms[0].Name != "after" || doms[0].UUID != dom.UUID {
		t.Fatalf("domains after restart: %+v", doms)
	}
	defs, _ := td2.store.Definitions()
	if _, ok := defs["before"]; ok || len(defs) != 1 {
		t.Errorf("definitions after restart: %v", defs)
	}
}
