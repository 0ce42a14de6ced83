package store

import (
	"os"
	"path/filepath"
	"testing"
)

func TestDefinitionsRoundTrip(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SaveDefinition("a", "<domain>a</domain>"); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveDefinition("b", "<domain>b</domain>"); err != nil {
		t.Fatal(err)
	}
	// A temporary file left by a crash mid-write is not a definition.
	os.WriteFile(filepath.Join(s.root, "domains", ".c.xml.tmp123"), []byte("<dom"), 0o600)
	defs, err := s.Definitions()
	if err != nil {
		t.Fatal(err)
	}
	if len(defs) != 2 || defs["a"] != "<domain>a</domain>" {
		t.Fatalf("definitions %v", defs)
	}
	if err := s.SetAutostart("a", true); err != nil || !s.Autostart("a") {
		t.Fatalf("autostart: %v", err)
	}
	if err := s.RemoveDefinition("a"); err != nil {
		t.Fatal(err)
	}
	if s.Autostart("a") {
		t.Error("autostart mark survived undefine")
	}
	defs, _ = s.Definitions()
	if _, ok := defs["a"]; ok || len(defs) != 1 {
		t.Fatalf("after remove: %v", defs)
	}
}

func TestStatusRoundTrip(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	st := &Status{Name: "x", ID: 3, PID: 42, StartTime: 99, State: 1, Reason: 1, LiveXML: "<domain/>"}
	if err := s.SaveStatus(st); err != nil {
		t.Fatal(err)
	}
	all, err := s.Statuses()
	if err != nil || all["x"].PID != 42 || all["x"].StartTime != 99 {
		t.Fatalf("statuses %+v %v", all, err)
	}
	os.WriteFile(s.statusPath("broken"), []byte("{"), 0o600)
	if _, err := s.Statuses(); err == nil {
		t.Error("a corrupt status file was skipped silently")
	}
	s.RemoveStatus("broken")
	s.RemoveStatus("x")
	if all, _ := s.Statuses(); len(all) != 0 {
		t.Fatalf("after remove: %v", all)
	}
}

func TestRenameDefinition(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s.SaveDefinition("old", "<domain>old</domain>")
	s.SetAutostart("old", true)
	if err := s.RenameDefinition("old", "new", "<domain>new</domain>"); err != nil {
		t.Fatal(err)
	}
	defs, _ := s.Definitions()
	if len(defs) != 1 || defs["new"] != "<domain>new</domain>" {
		t.Fatalf("definitions after rename: %v", defs)
	}
	if s.Autostart("old") || !s.Autostart("new") {
		t.Error("autostart mark did not move")
	}
	if _, err := s.DefinitionModTime("new"); err != nil {
		t.Error(err)
	}
}
