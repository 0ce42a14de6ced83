package storage

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	libvirt "github.com/digitalocean/go-libvirt"
)

func TestPoolLifecycleAndRestart(t *testing.T) {
	e := newEnv(t)
	target := filepath.Join(e.root, "images")
	p, err := e.d.StoragePoolDefineXML(ctx, poolXML("images", target+"/", ""), 0)
	if err != nil {
		t.Fatal(err)
	}
	// The config file is libvirt's, private.
	cfg := filepath.Join(e.cfg, "images.xml")
	st, err := os.Stat(cfg)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("config file %v mode %v", err, st)
	}
	if st, _ := os.Stat(e.cfg); st.Mode().Perm() != 0o700 {
		t.Fatalf("config dir mode %v", st.Mode())
	}
	// Start without the directory: libvirt's error.
	err = e.d.StoragePoolCreate(ctx, p, 0)
	wantErr(t, err, libvirt.ErrSystemError, "cannot open directory '"+target+"': No such file or directory")
	if err := e.d.StoragePoolBuild(ctx, p, 0); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(target); err != nil || st.Mode().Perm() != 0o711 {
		t.Fatalf("built target %v %v", st, err)
	}
	if err := e.d.StoragePoolCreate(ctx, p, 0); err != nil {
		t.Fatal(err)
	}
	wantErr(t, e.d.StoragePoolCreate(ctx, p, 0), libvirt.ErrOperationInvalid, "storage pool 'images' is already active")
	wantErr(t, e.d.StoragePoolBuild(ctx, p, 0), libvirt.ErrOperationInvalid, "already active")
	info, err := e.d.StoragePoolGetInfo(ctx, p)
	if err != nil || info.State != libvirt.StoragePoolRunning || info.Capacity == 0 || info.Capacity != info.Allocation+info.Available {
		t.Fatalf("info %+v %v", info, err)
	}
	doc, err := e.d.StoragePoolGetXMLDesc(ctx, p, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<pool type='dir'>\n  <name>images</name>\n  <uuid>",
		"<capacity unit='bytes'>", "<source>\n  </source>\n  <target>\n    <path>" + target + "</path>\n    <permissions>\n      <mode>0711</mode>\n      <owner>",
		"</permissions>\n  </target>\n</pool>\n"} {
		if !strings.Contains(doc, want) {
			t.Fatalf("pool XML lacks %q:\n%s", want, doc)
		}
	}
	if on, _ := e.d.StoragePoolIsActive(ctx, p); !on {
		t.Fatal("not active")
	}
	if pers, _ := e.d.StoragePoolIsPersistent(ctx, p); !pers {
		t.Fatal("not persistent")
	}
	if err := e.d.StoragePoolSetAutostart(ctx, p, true); err != nil {
		t.Fatal(err)
	}
	if on, _ := e.d.StoragePoolGetAutostart(ctx, p); !on {
		t.Fatal("autostart not set")
	}
	if l, err := os.Readlink(filepath.Join(e.cfg, "autostart", "images.xml")); err != nil || l != cfg {
		t.Fatalf("autostart link %q %v", l, err)
	}
	if got := e.takeEvents(); !reflect.DeepEqual(got, []string{"images:DEFINED", "images:CREATED", "images:STARTED"}) {
		t.Fatalf("events %v", got)
	}
	if err := e.d.StoragePoolRefresh(ctx, p, 0); err != nil {
		t.Fatal(err)
	}
	if err := e.d.StoragePoolDestroy(ctx, p); err != nil {
		t.Fatal(err)
	}
	wantErr(t, e.d.StoragePoolDestroy(ctx, p), libvirt.ErrOperationInvalid, "storage pool 'images' is not active")
	if got := e.takeEvents(); !reflect.DeepEqual(got, []string{"images:REFRESH", "images:STOPPED"}) {
		t.Fatalf("events %v", got)
	}

	// A restarted daemon finds the pool, inactive, and autostarts it.
	d2 := e.open()
	p2, err := d2.StoragePoolLookupByName(ctx, "images")
	if err != nil || p2 != p {
		t.Fatalf("after restart: %v %v (want %v)", p2, err, p)
	}
	if on, _ := d2.StoragePoolIsActive(ctx, p2); on {
		t.Fatal("active before Autostart")
	}
	d2.Autostart(ctx)
	if on, _ := d2.StoragePoolIsActive(ctx, p2); !on {
		t.Fatal("autostart pool not started")
	}
	if names := d2.StoragePoolNames(true); !reflect.DeepEqual(names, []string{"images"}) {
		t.Fatalf("active names %v", names)
	}
	if pp, err := d2.StoragePoolLookupByTargetPath(ctx, target+"//"); err != nil || pp != p {
		t.Fatalf("by target path: %v %v", pp, err)
	}
	if err := d2.StoragePoolDestroy(ctx, p2); err != nil {
		t.Fatal(err)
	}
	// Undefine, then nothing is left of it.
	if err := d2.StoragePoolUndefine(ctx, p2); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(cfg); !os.IsNotExist(err) {
		t.Fatalf("config file left: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(e.cfg, "autostart", "images.xml")); !os.IsNotExist(err) {
		t.Fatalf("autostart link left: %v", err)
	}
	wantErr(t, func() error { _, err := d2.StoragePoolLookupByName(ctx, "images"); return err }(),
		libvirt.ErrNoStoragePool, "no storage pool with matching name 'images'")
	if d3 := e.open(); len(d3.StoragePoolNames(false)) != 0 {
		t.Fatal("undefined pool came back")
	}
}

func TestPoolErrors(t *testing.T) {
	e := newEnv(t)
	p := e.startPool("a")
	_, err := e.d.StoragePoolLookupByName(ctx, "nope")
	wantErr(t, err, libvirt.ErrNoStoragePool, "Storage pool not found: no storage pool with matching name 'nope'")
	_, err = e.d.StoragePoolLookupByUUID(ctx, libvirt.UUID{1})
	wantErr(t, err, libvirt.ErrNoStoragePool, "no storage pool with matching uuid '01000000-0000-0000-0000-000000000000'")
	_, err = e.d.StoragePoolGetInfo(ctx, libvirt.StoragePool{Name: "x", UUID: libvirt.UUID{2}})
	wantErr(t, err, libvirt.ErrNoStoragePool, "no storage pool with matching uuid '02000000-0000-0000-0000-000000000000' (x)")

	other := filepath.Join(e.root, "b")
	// Same name, another UUID.
	_, err = e.d.StoragePoolDefineXML(ctx, "<pool type='dir'><name>a</name><uuid>11111111-2222-3333-4444-555555555555</uuid><target><path>"+other+"</path></target></pool>", 0)
	wantErr(t, err, libvirt.ErrOperationFailed, "operation failed: pool 'a' already exists with uuid "+uuidOf(p))
	// Same UUID, another name.
	_, err = e.d.StoragePoolDefineXML(ctx, "<pool type='dir'><name>b</name><uuid>"+uuidOf(p)+"</uuid><target><path>"+other+"</path></target></pool>", 0)
	wantErr(t, err, libvirt.ErrOperationFailed, "pool 'a' is already defined with uuid "+uuidOf(p))
	// Another pool on the same directory.
	_, err = e.d.StoragePoolDefineXML(ctx, poolXML("c", filepath.Join(e.root, "a"), ""), 0)
	wantErr(t, err, libvirt.ErrOperationFailed, "Storage source conflict with pool: 'a'")
	// Creating a running pool again.
	_, err = e.d.StoragePoolCreateXML(ctx, "<pool type='dir'><name>a</name><uuid>"+uuidOf(p)+"</uuid><target><path>"+filepath.Join(e.root, "a")+"</path></target></pool>", 0)
	wantErr(t, err, libvirt.ErrOperationInvalid, "pool is already active as 'a'")

	for _, c := range []struct {
		doc  string
		code libvirt.ErrorNumber
		sub  string
	}{
		{"<pool type='dir'><name>x</name>", libvirt.ErrXMLDetail, "(storage_pool_definition):1: Premature end of data"},
		{"", libvirt.ErrXMLDetail, "Document is empty"},
		{"<volume/>", libvirt.ErrXMLError, "unexpected root element <volume>, expecting <pool>"},
		{"<pool><name>x</name></pool>", libvirt.ErrXMLError, "storage pool missing type attribute"},
		{"<pool type='foo'><name>x</name></pool>", libvirt.ErrConfigUnsupported, "unknown storage pool type foo"},
		{"<pool type='dir'><target><path>/x</path></target></pool>", libvirt.ErrXMLError, "missing pool source name element"},
		{"<pool type='dir'><name>a/b</name><target><path>/x</path></target></pool>", libvirt.ErrXMLError, "name a/b cannot contain '/'"},
		{"<pool type='dir'><name>x</name><uuid>zz</uuid><target><path>/x</path></target></pool>", libvirt.ErrXMLError, "malformed uuid element"},
		{"<pool type='dir'><name>x</name></pool>", libvirt.ErrXMLError, "missing storage pool target path"},
		{"<pool type='dir'><name>x</name><target><path>/x</path><permissions><mode>999</mode></permissions></target></pool>", libvirt.ErrXMLError, "malformed octal mode"},
		{"<pool type='fs'><name>x</name><source><device path='/dev/sdz'/></source><target><path>/x</path></target></pool>", libvirt.ErrInternalError, "missing backend for pool type 1 (fs)"},
		{"<pool type='logical'><name>x</name></pool>", libvirt.ErrInternalError, "missing backend for pool type 3 (logical)"},
		{"<pool type='iscsi'><name>x</name></pool>", libvirt.ErrInternalError, "(iscsi)"},
	} {
		_, err := e.d.StoragePoolDefineXML(ctx, c.doc, 0)
		wantErr(t, err, c.code, c.sub)
		_, err = e.d.StoragePoolCreateXML(ctx, c.doc, 0)
		wantErr(t, err, c.code, c.sub)
	}
	_, err = e.d.StoragePoolDefineXML(ctx, poolXML("x", "/x", ""), 1<<5)
	wantErr(t, err, libvirt.ErrInvalidArg, "unsupported flags (0x20) in function storagePoolDefineXML")

	// Delete: refused while active, and while the directory has files.
	wantErr(t, e.d.StoragePoolDelete(ctx, p, 0), libvirt.ErrOperationInvalid, "storage pool 'a' is still active")
	wantErr(t, e.d.StoragePoolUndefine(ctx, p), libvirt.ErrOperationInvalid, "storage pool 'a' is still active")
	e.createVol(p, volXML("v", "1024", "raw", ""), 0)
	if err := e.d.StoragePoolDestroy(ctx, p); err != nil {
		t.Fatal(err)
	}
	_, err = e.d.StoragePoolListVolumes(ctx, p)
	wantErr(t, err, libvirt.ErrOperationInvalid, "storage pool 'a' is not active")
	_, err = e.d.StorageVolLookupByName(ctx, p, "v")
	wantErr(t, err, libvirt.ErrOperationInvalid, "storage pool 'a' is not active")
	wantErr(t, e.d.StoragePoolRefresh(ctx, p, 0), libvirt.ErrOperationInvalid, "not active")
	dir := filepath.Join(e.root, "a")
	wantErr(t, e.d.StoragePoolDelete(ctx, p, 0), libvirt.ErrSystemError, "failed to remove pool '"+dir+"': Directory not empty")
	wantErr(t, e.d.StoragePoolDelete(ctx, p, libvirt.StoragePoolDeleteZeroed), libvirt.ErrInvalidArg, "unsupported flags (0x1) in function virStorageBackendFileSystemDelete")
	if err := os.Remove(filepath.Join(dir, "v")); err != nil {
		t.Fatal(err)
	}
	if err := e.d.StoragePoolDelete(ctx, p, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("pool directory left: %v", err)
	}
	if ev := e.takeEvents(); ev[len(ev)-1] != "a:DELETED" {
		t.Fatalf("events %v", ev)
	}
}

func uuidOf(p libvirt.StoragePool) string {
	u := p.UUID
	return strings.ToLower(strings.Join([]string{hexs(u[0:4]), hexs(u[4:6]), hexs(u[6:8]), hexs(u[8:10]), hexs(u[10:16])}, "-"))
}

func hexs(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

func TestTransientPoolAndRedefine(t *testing.T) {
	e := newEnv(t)
	dir := filepath.Join(e.root, "t")
	p, err := e.d.StoragePoolCreateXML(ctx, poolXML("t", dir, "<permissions><mode>0750</mode></permissions>"), libvirt.StoragePoolCreateWithBuild)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o750 {
		t.Fatalf("built %v %v", st, err)
	}
	if pers, _ := e.d.StoragePoolIsPersistent(ctx, p); pers {
		t.Fatal("transient pool persistent")
	}
	wantErr(t, e.d.StoragePoolSetAutostart(ctx, p, true), libvirt.ErrInternalError, "pool has no config file")
	wantErr(t, e.d.StoragePoolUndefine(ctx, p), libvirt.ErrOperationInvalid, "still active")
	if l, _ := e.d.ListAllStoragePools(ctx, libvirt.ConnectListStoragePoolsTransient|libvirt.ConnectListStoragePoolsDir); len(l) != 1 {
		t.Fatalf("transient list %v", l)
	}
	if l, _ := e.d.ListAllStoragePools(ctx, libvirt.ConnectListStoragePoolsPersistent); len(l) != 0 {
		t.Fatalf("persistent list %v", l)
	}
	if l, _ := e.d.ListAllStoragePools(ctx, libvirt.ConnectListStoragePoolsFs); len(l) != 0 {
		t.Fatalf("fs list %v", l)
	}
	// Defining it while it runs makes it persistent; the new definition
	// is the inactive one until it stops.
	if _, err := e.d.StoragePoolDefineXML(ctx, "<pool type='dir'><name>t</name><uuid>"+uuidOf(p)+"</uuid><target><path>"+dir+"</path><permissions><mode>0700</mode></permissions></target></pool>", 0); err != nil {
		t.Fatal(err)
	}
	inactive, _ := e.d.StoragePoolGetXMLDesc(ctx, p, libvirt.StorageXMLInactive)
	live, _ := e.d.StoragePoolGetXMLDesc(ctx, p, 0)
	if !strings.Contains(inactive, "<mode>0700</mode>") || strings.Contains(inactive, "<owner>") || !strings.Contains(live, "<mode>0750</mode>") {
		t.Fatalf("inactive:\n%s\nlive:\n%s", inactive, live)
	}
	if err := e.d.StoragePoolDestroy(ctx, p); err != nil {
		t.Fatal(err)
	}
	if doc, _ := e.d.StoragePoolGetXMLDesc(ctx, p, 0); !strings.Contains(doc, "<mode>0700</mode>") {
		t.Fatalf("after stop:\n%s", doc)
	}
	if err := e.d.StoragePoolUndefine(ctx, p); err != nil {
		t.Fatal(err)
	}

	// A transient pool vanishes when it stops.
	q, err := e.d.StoragePoolCreateXML(ctx, poolXML("q", dir, ""), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.d.StoragePoolDestroy(ctx, q); err != nil {
		t.Fatal(err)
	}
	_, err = e.d.StoragePoolLookupByName(ctx, "q")
	wantErr(t, err, libvirt.ErrNoStoragePool, "'q'")
	want := []string{"t:STARTED", "t:DEFINED", "t:STOPPED", "t:UNDEFINED", "q:STARTED", "q:STOPPED"}
	if got := e.takeEvents(); !reflect.DeepEqual(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	// A failed start of a transient pool leaves nothing behind.
	_, err = e.d.StoragePoolCreateXML(ctx, poolXML("gone", filepath.Join(e.root, "missing"), ""), 0)
	wantErr(t, err, libvirt.ErrSystemError, "No such file or directory")
	if n := e.d.StoragePoolNames(false); len(n) != 0 {
		t.Fatalf("left %v", n)
	}
}

// Pools that run when the daemon stops run again when it starts, in the
// same boot of the host; a state file from another boot is dropped.
func TestRunningPoolsSurviveRestart(t *testing.T) {
	e := newEnv(t)
	p := e.startPool("kept")
	tr, err := e.d.StoragePoolCreateXML(ctx, poolXML("tr", filepath.Join(e.root, "kept-too"), ""), libvirt.StoragePoolCreateWithBuild)
	if err != nil {
		t.Fatal(err)
	}
	e.createVol(p, volXML("v.img", "4096", "raw", ""), 0)
	if err := os.Mkdir(filepath.Join(e.root, "old"), 0o700); err != nil {
		t.Fatal(err)
	}
	old := "<poolstate boot='not-this-boot'>\n" + poolXML("old", filepath.Join(e.root, "old"), "") + "\n</poolstate>\n"
	if err := os.WriteFile(filepath.Join(e.cfg, "run", "old.xml"), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}

	d2 := e.open()
	for _, ref := range []libvirt.StoragePool{p, tr} {
		if on, err := d2.StoragePoolIsActive(ctx, ref); err != nil || !on {
			t.Fatalf("%s not running after restart: %v", ref.Name, err)
		}
	}
	if pers, _ := d2.StoragePoolIsPersistent(ctx, tr); pers {
		t.Fatal("transient pool came back persistent")
	}
	if pers, _ := d2.StoragePoolIsPersistent(ctx, p); !pers {
		t.Fatal("persistent pool came back transient")
	}
	if _, err := d2.StorageVolLookupByName(ctx, p, "v.img"); err != nil {
		t.Fatal(err)
	}
	if _, err := d2.StoragePoolLookupByName(ctx, "old"); err == nil {
		t.Fatal("pool of another boot restored")
	}
	if _, err := os.Stat(filepath.Join(e.cfg, "run", "old.xml")); !os.IsNotExist(err) {
		t.Fatalf("stale state kept: %v", err)
	}
	if err := d2.StoragePoolDestroy(ctx, tr); err != nil {
		t.Fatal(err)
	}
	if err := d2.StoragePoolDestroy(ctx, p); err != nil {
		t.Fatal(err)
	}
	d3 := e.open()
	if n := d3.StoragePoolNames(true); len(n) != 0 {
		t.Fatalf("destroyed pools running after restart: %v", n)
	}
	if n := d3.StoragePoolNames(false); !reflect.DeepEqual(n, []string{"kept"}) {
		t.Fatalf("inactive pools %v", n)
	}
}
