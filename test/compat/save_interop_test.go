package compat_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSaveImageInterop: save images are libvirt's format, so an image
// written by libvirtd 9.0's virsh save restores on govirtd, and one
// written by govirtd restores on libvirtd, the guest carrying on in the
// same boot each time.
func TestSaveImageInterop(t *testing.T) {
	requireLibvirtd(t)
	t.Parallel()
	g := StartHost(t, HostOptions{})
	l := StartLibvirtd(t, "si-l")
	dir := t.TempDir()
	serial := filepath.Join(dir, "si.serial")
	xmlPath := filepath.Join(dir, "si.xml")
	if err := os.WriteFile(xmlPath, []byte(GuestXML(t, GuestOptions{Name: "si", Serial: serial})), 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "si.save")

	// libvirtd saves, govirtd restores.
	MustVirsh(t, l.URI(), "create", xmlPath)
	first := WaitTicks(t, serial, 3, 60*time.Second)
	MustVirsh(t, l.URI(), "save", "si", img)
	saved, _ := LastTick(serial)
	if r := run(t, 60*time.Second, "virsh", "-c", g.URI(), "restore", img); r.Err != nil {
		t.Fatalf("govirtd restoring libvirtd's image: %s", r)
	}
	if st := domstate(t, g, "si"); st != "running (restored)" {
		t.Errorf("on govirtd after restore: %q", st)
	}
	if tk := WaitTicks(t, serial, saved.N, 30*time.Second); tk.BootID != first.BootID {
		t.Errorf("libvirtd's image restored on govirtd as another boot: %s, was %s", tk.BootID, first.BootID)
	}

	// govirtd saves, libvirtd restores.
	os.Remove(img)
	MustVirsh(t, g.URI(), "save", "si", img)
	saved, _ = LastTick(serial)
	if r := run(t, 60*time.Second, "virsh", "-c", l.URI(), "restore", img); r.Err != nil {
		t.Fatalf("libvirtd restoring govirtd's image: %s", r)
	}
	st := strings.TrimSpace(MustVirsh(t, l.URI(), "domstate", "--reason", "si"))
	if st != "running (restored)" {
		t.Errorf("on libvirtd after restore: %q", st)
	}
	if tk := WaitTicks(t, serial, saved.N, 30*time.Second); tk.BootID != first.BootID {
		t.Errorf("govirtd's image restored on libvirtd as another boot: %s, was %s", tk.BootID, first.BootID)
	}
}
