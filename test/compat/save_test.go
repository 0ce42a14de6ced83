package compat_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/govirtd/govirtd/test/deps"
)

// TestSaveRestore: virsh save of the running test guest stops it ("shut
// off (saved)") into libvirt's save image format; virsh restore brings the
// same boot of the guest back ("running (restored)"), its counter carrying
// on from where it stopped; save-image-dumpxml shows the image's domain;
// --paused restores it paused; and libvirt's errors for the wrong file and
// for a domain that is not running.
func TestSaveRestore(t *testing.T) {
	deps.Require(t, "virsh", "qemu-system-x86_64")
	t.Parallel()
	h := StartHost(t, HostOptions{})
	serial := filepath.Join(h.Dir, "sv.serial")
	defineGuest(t, h, GuestOptions{Name: "sv", Serial: serial})
	img := filepath.Join(h.Dir, "sv.save")

	r := Virsh(t, h.URI(), "save", "sv", img)
	if r.Err == nil || !strings.Contains(r.Stderr, "error: Requested operation is not valid: domain is not running") {
		t.Errorf("save of a shut off domain: %s", r)
	}
	if _, err := os.Stat(img); !os.IsNotExist(err) {
		t.Errorf("a refused save left %s: %v", img, err)
	}

	MustVirsh(t, h.URI(), "start", "sv")
	before := WaitTicks(t, serial, 3, 60*time.Second)
	if r := run(t, 60*time.Second, "virsh", "-c", h.URI(), "save", "sv", img); r.Err != nil || !strings.Contains(r.Stdout, "Domain 'sv' saved to "+img) {
		t.Fatalf("virsh save: %s", r)
	}
	if st := domstate(t, h, "sv"); st != "shut off (saved)" {
		t.Errorf("after save: %q", st)
	}
	if pids := h.QEMUPids(); len(pids) != 0 {
		t.Errorf("QEMU still runs after save: %v", pids)
	}
	saved, _ := LastTick(serial)
	if saved.BootID != before.BootID || saved.N < before.N {
		t.Fatalf("ticks before save: %+v then %+v", before, saved)
	}
	head := make([]byte, 16)
	if f, err := os.Open(img); err != nil {
		t.Fatal(err)
	} else {
		f.Read(head)
		f.Close()
	}
	if string(head) != "LibvirtQemudSave" {
		t.Errorf("image starts with %q, want libvirt's magic", head)
	}
	if fi, err := os.Stat(img); err != nil || fi.Mode().Perm() != 0o600 || fi.Size() < 1<<20 {
		t.Errorf("image %v %v: want mode 0600 and the guest's memory in it", fi, err)
	}
	x := MustVirsh(t, h.URI(), "save-image-dumpxml", img)
	if !strings.Contains(x, "<name>sv</name>") || strings.Contains(x, "<domain type='qemu' id=") {
		t.Errorf("save-image-dumpxml:\n%s", x)
	}

	time.Sleep(1 * time.Second) // the counter would have moved on by now
	if r := run(t, 60*time.Second, "virsh", "-c", h.URI(), "restore", img); r.Err != nil || !strings.Contains(r.Stdout, "Domain restored from "+img) {
		t.Fatalf("virsh restore: %s", r)
	}
	if st := domstate(t, h, "sv"); st != "running (restored)" {
		t.Errorf("after restore: %q", st)
	}
	after := WaitTicks(t, serial, saved.N, 30*time.Second)
	if after.BootID != saved.BootID {
		t.Errorf("the guest booted again (boot id %s, was %s): restore must continue the saved run", after.BootID, saved.BootID)
	}
	for _, tk := range Ticks(serial) {
		if tk.BootID != saved.BootID {
			t.Errorf("a tick of another boot in the serial log: %+v", tk)
		}
	}
	if after.N > saved.N+3 {
		t.Errorf("counter jumped from %d to %d across save and restore", saved.N, after.N)
	}

	r = Virsh(t, h.URI(), "restore", img)
	if r.Err == nil || !strings.Contains(r.Stderr, "error: Requested operation is not valid: domain 'sv' is already active") {
		t.Errorf("restore while running: %s", r)
	}

	// A save that cannot write its file leaves the guest running, as
	// libvirt's ("save canceled").
	bad := filepath.Join(h.Dir, "no-such-dir", "sv.save")
	r = Virsh(t, h.URI(), "save", "sv", bad)
	if r.Err == nil || !strings.Contains(r.Stderr, "error: Failed to create file '"+bad+"': No such file or directory") {
		t.Errorf("save to a missing directory: %s", r)
	}
	if st := domstate(t, h, "sv"); st != "running (save canceled)" {
		t.Errorf("after a failed save: %q", st)
	}
	tk, _ := LastTick(serial)
	if next := WaitTicks(t, serial, tk.N, 30*time.Second); next.BootID != saved.BootID {
		t.Errorf("after a failed save: %+v", next)
	}

	// --paused: saved running, restored paused; resume carries on.
	MustVirsh(t, h.URI(), "save", "sv", img)
	MustVirsh(t, h.URI(), "restore", img, "--paused")
	if st := domstate(t, h, "sv"); !strings.HasPrefix(st, "paused") {
		t.Errorf("after restore --paused: %q", st)
	}
	p1, _ := LastTick(serial)
	time.Sleep(1200 * time.Millisecond)
	if p2, _ := LastTick(serial); p2.N != p1.N {
		t.Errorf("guest ticked while restored paused: %d -> %d", p1.N, p2.N)
	}
	MustVirsh(t, h.URI(), "resume", "sv")
	if tk := WaitTicks(t, serial, p1.N, 30*time.Second); tk.BootID != saved.BootID {
		t.Errorf("after resume: %+v", tk)
	}

	notImage := filepath.Join(h.Dir, "not-an-image")
	os.WriteFile(notImage, []byte(strings.Repeat("this is not a save image\n", 10)), 0o644)
	r = Virsh(t, h.URI(), "restore", notImage)
	if r.Err == nil || !strings.Contains(r.Stderr, "error: operation failed: image magic is incorrect") {
		t.Errorf("restore of a file that is not an image: %s", r)
	}
	r = Virsh(t, h.URI(), "restore", filepath.Join(h.Dir, "missing.save"))
	if r.Err == nil || !strings.Contains(r.Stderr, "Failed to open file '"+filepath.Join(h.Dir, "missing.save")+"': No such file or directory") {
		t.Errorf("restore of a missing file: %s", r)
	}
	MustVirsh(t, h.URI(), "destroy", "sv")
}

// TestManagedSave: virsh managedsave, then virsh start restores the guest
// from the image (same boot, counter carrying on) and deletes the image,
// as libvirt does; list --managed-save and dominfo show the image while it
// is there; a transient domain cannot be managed-saved.
func TestManagedSave(t *testing.T) {
	deps.Require(t, "virsh", "qemu-system-x86_64")
	t.Parallel()
	h := StartHost(t, HostOptions{})
	serial := filepath.Join(h.Dir, "ms.serial")
	defineGuest(t, h, GuestOptions{Name: "ms", Serial: serial})
	MustVirsh(t, h.URI(), "start", "ms")
	before := WaitTicks(t, serial, 3, 60*time.Second)

	if r := run(t, 60*time.Second, "virsh", "-c", h.URI(), "managedsave", "ms"); r.Err != nil || !strings.Contains(r.Stdout, "Domain 'ms' state saved by libvirt") {
		t.Fatalf("virsh managedsave: %s", r)
	}
	if st := domstate(t, h, "ms"); st != "shut off (saved)" {
		t.Errorf("after managedsave: %q", st)
	}
	image := filepath.Join(h.Dir, "state", "qemu", "save", "ms.save")
	if _, err := os.Stat(image); err != nil {
		t.Fatalf("managed save image: %v", err)
	}
	if info := MustVirsh(t, h.URI(), "dominfo", "ms"); !strings.Contains(info, "Managed save:   yes") {
		t.Errorf("dominfo after managedsave:\n%s", info)
	}
	if l := MustVirsh(t, h.URI(), "list", "--all", "--managed-save"); !strings.Contains(l, "ms") || !strings.Contains(l, "saved") {
		t.Errorf("list --all --managed-save:\n%s", l)
	}
	if x := MustVirsh(t, h.URI(), "managedsave-dumpxml", "ms"); !strings.Contains(x, "<name>ms</name>") {
		t.Errorf("managedsave-dumpxml:\n%s", x)
	}
	r := Virsh(t, h.URI(), "undefine", "ms")
	if r.Err == nil || !strings.Contains(r.Stderr, "Refusing to undefine while domain managed save image exists") {
		t.Errorf("undefine with a managed save image: %s", r)
	}
	saved, _ := LastTick(serial)

	// A restarted daemon still knows about the image.
	h.Restart()
	if info := MustVirsh(t, h.URI(), "dominfo", "ms"); !strings.Contains(info, "Managed save:   yes") {
		t.Errorf("dominfo after a daemon restart:\n%s", info)
	}

	if r := run(t, 60*time.Second, "virsh", "-c", h.URI(), "start", "ms"); r.Err != nil || !strings.Contains(r.Stdout, "Domain 'ms' started") {
		t.Fatalf("virsh start: %s", r)
	}
	if st := domstate(t, h, "ms"); st != "running (restored)" {
		t.Errorf("start with a managed save image: %q", st)
	}
	after := WaitTicks(t, serial, saved.N, 30*time.Second)
	if after.BootID != before.BootID {
		t.Errorf("start booted the guest afresh (boot id %s, was %s) instead of restoring it", after.BootID, before.BootID)
	}
	if _, err := os.Stat(image); !os.IsNotExist(err) {
		t.Errorf("the managed save image is still there after the restore: %v", err)
	}
	if info := MustVirsh(t, h.URI(), "dominfo", "ms"); !strings.Contains(info, "Managed save:   no") {
		t.Errorf("dominfo after start:\n%s", info)
	}

	// managedsave-remove, then start boots afresh.
	MustVirsh(t, h.URI(), "managedsave", "ms")
	MustVirsh(t, h.URI(), "managedsave-remove", "ms")
	if _, err := os.Stat(image); !os.IsNotExist(err) {
		t.Errorf("managedsave-remove left the image: %v", err)
	}
	MustVirsh(t, h.URI(), "start", "ms")
	if st := domstate(t, h, "ms"); st != "running (booted)" {
		t.Errorf("start after managedsave-remove: %q", st)
	}
	// undefine --managed-save takes the image with the definition.
	MustVirsh(t, h.URI(), "managedsave", "ms")
	MustVirsh(t, h.URI(), "undefine", "--managed-save", "ms")
	if _, err := os.Stat(image); !os.IsNotExist(err) {
		t.Errorf("undefine --managed-save left the image: %v", err)
	}
	if r := Virsh(t, h.URI(), "domstate", "ms"); r.Err == nil {
		t.Errorf("ms still defined after undefine --managed-save: %s", r)
	}

	// A transient domain has nowhere to come back to.
	tserial := filepath.Join(h.Dir, "tr.serial")
	tpath := filepath.Join(h.Dir, "tr.xml")
	os.WriteFile(tpath, []byte(GuestXML(t, GuestOptions{Name: "tr", Serial: tserial})), 0o644)
	MustVirsh(t, h.URI(), "create", tpath)
	r = Virsh(t, h.URI(), "managedsave", "tr")
	if r.Err == nil || !strings.Contains(r.Stderr, "error: Requested operation is not valid: cannot do managed save for transient domain") {
		t.Errorf("managedsave of a transient domain: %s", r)
	}
	MustVirsh(t, h.URI(), "destroy", "tr")
}

// TestSaveImageDefine: virsh save-image-define edits the domain in an
// image in place (here a description, and --paused), the restore then uses
// it; the image must stay of the same domain; the read-only socket may
// read an image's XML (without secrets) and nothing else.
func TestSaveImageDefine(t *testing.T) {
	deps.Require(t, "virsh", "qemu-system-x86_64")
	t.Parallel()
	h := StartHost(t, HostOptions{})
	serial := filepath.Join(h.Dir, "sd.serial")
	defineGuest(t, h, GuestOptions{Name: "sd", Serial: serial})
	MustVirsh(t, h.URI(), "start", "sd")
	first := WaitTicks(t, serial, 2, 60*time.Second)
	img := filepath.Join(h.Dir, "sd.save")

	ro := h.ROURI()
	for api, args := range map[string][]string{
		"virDomainSave":        {"save", "sd", img},
		"virDomainManagedSave": {"managedsave", "sd"},
	} {
		r := Virsh(t, ro, args...)
		if r.Err == nil || !strings.Contains(r.Stderr, "read only access prevents "+api) {
			t.Errorf("%s on the read-only socket: %s", args[0], r)
		}
	}
	MustVirsh(t, h.URI(), "save", "sd", img)
	r := Virsh(t, ro, "restore", img)
	if r.Err == nil || !strings.Contains(r.Stderr, "read only access prevents virDomainRestore") {
		t.Errorf("restore on the read-only socket: %s", r)
	}
	if x := MustVirsh(t, ro, "save-image-dumpxml", img); !strings.Contains(x, "<name>sd</name>") {
		t.Errorf("save-image-dumpxml on the read-only socket:\n%s", x)
	}
	r = Virsh(t, ro, "save-image-dumpxml", "--security-info", img)
	if r.Err == nil || !strings.Contains(r.Stderr, "virDomainSaveImageGetXMLDesc with secure flag") {
		t.Errorf("save-image-dumpxml --security-info on the read-only socket: %s", r)
	}

	x := MustVirsh(t, h.URI(), "save-image-dumpxml", "--security-info", img)
	edited := filepath.Join(h.Dir, "sd-edited.xml")
	os.WriteFile(edited, []byte(strings.Replace(x, "</name>", "</name>\n  <description>edited in the image</description>", 1)), 0o644)
	MustVirsh(t, h.URI(), "save-image-define", img, edited, "--paused")
	if x := MustVirsh(t, h.URI(), "save-image-dumpxml", img); !strings.Contains(x, "<description>edited in the image</description>") {
		t.Errorf("save-image-dumpxml after save-image-define:\n%s", x)
	}
	other := filepath.Join(h.Dir, "other.xml")
	os.WriteFile(other, []byte(strings.Replace(x, "<name>sd</name>", "<name>other</name>", 1)), 0o644)
	r = Virsh(t, h.URI(), "save-image-define", img, other)
	if r.Err == nil || !strings.Contains(r.Stderr, "error: unsupported configuration: Target domain name 'other' does not match source 'sd'") {
		t.Errorf("save-image-define of another domain: %s", r)
	}

	MustVirsh(t, h.URI(), "restore", img)
	if st := domstate(t, h, "sd"); st != "paused (migrating)" {
		t.Errorf("restore of an image defined --paused: %q", st)
	}
	if x := MustVirsh(t, h.URI(), "dumpxml", "sd"); !strings.Contains(x, "<description>edited in the image</description>") {
		t.Errorf("the restored domain lacks the image's edited definition:\n%s", x)
	}
	saved, _ := LastTick(serial)
	MustVirsh(t, h.URI(), "resume", "sd")
	if tk := WaitTicks(t, serial, saved.N, 30*time.Second); tk.BootID != first.BootID {
		t.Errorf("after restore and resume: boot %s, was %s", tk.BootID, first.BootID)
	}
	MustVirsh(t, h.URI(), "destroy", "sd")
}

// TestSaveEvents: `virsh event --all --loop` sees save, restore,
// managedsave and the start that restores, with libvirt's details (the
// sequence libvirtd 9.0 sends for the same commands).
func TestSaveEvents(t *testing.T) {
	deps.Require(t, "virsh", "qemu-system-x86_64")
	t.Parallel()
	h := StartHost(t, HostOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ev := exec.CommandContext(ctx, "virsh", "-c", h.URI(), "event", "--all", "--loop")
	var out syncBuilder
	ev.Stdout, ev.Stderr = &out, &out
	if err := ev.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ev.Process.Kill(); ev.Wait() })
	time.Sleep(500 * time.Millisecond) // let it register its callbacks

	serial := filepath.Join(h.Dir, "se.serial")
	defineGuest(t, h, GuestOptions{Name: "se", Serial: serial})
	MustVirsh(t, h.URI(), "start", "se")
	WaitTicks(t, serial, 0, 60*time.Second)
	img := filepath.Join(h.Dir, "se.save")
	MustVirsh(t, h.URI(), "save", "se", img)
	if ji := MustVirsh(t, h.URI(), "domjobinfo", "--completed", "se"); !strings.Contains(ji, "Operation:        Save") || !strings.Contains(ji, "Memory processed:") {
		t.Errorf("domjobinfo --completed after save:\n%s", ji)
	}
	MustVirsh(t, h.URI(), "restore", img, "--paused")
	MustVirsh(t, h.URI(), "resume", "se")
	MustVirsh(t, h.URI(), "managedsave", "se")
	MustVirsh(t, h.URI(), "start", "se", "--paused")
	MustVirsh(t, h.URI(), "destroy", "se")

	want := []string{
		"event 'lifecycle' for domain 'se': Started Booted",
		"event 'lifecycle' for domain 'se': Suspended Paused",      // save stops the CPUs first
		"event 'job-completed' for domain 'se':\n\toperation: 2\n", // VIR_DOMAIN_JOB_OPERATION_SAVE
		"event 'lifecycle' for domain 'se': Stopped Saved",
		"event 'lifecycle' for domain 'se': Started Restored",
		"event 'lifecycle' for domain 'se': Suspended Restored",
		"event 'lifecycle' for domain 'se': Resumed Unpaused",
		"event 'lifecycle' for domain 'se': Suspended Paused",
		"event 'lifecycle' for domain 'se': Stopped Saved",
		"event 'lifecycle' for domain 'se': Started Restored",
		"event 'lifecycle' for domain 'se': Suspended Paused", // start --paused
		"event 'lifecycle' for domain 'se': Stopped Destroyed",
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && !strings.Contains(out.String(), want[len(want)-1]) {
		time.Sleep(100 * time.Millisecond)
	}
	got := out.String()
	pos := 0
	for _, w := range want {
		i := strings.Index(got[pos:], w)
		if i < 0 {
			t.Fatalf("virsh event output lacks %q (in order):\n%s", w, got)
		}
		pos += i + len(w)
	}
}

// syncBuilder is a strings.Builder a child process may write while the
// test reads it.
type syncBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuilder) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuilder) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
