package storage

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	libvirt "github.com/digitalocean/go-libvirt"
)

// qemuImgInfo is what qemu-img says of a file.
func qemuImgInfo(t *testing.T, path string) (format string, virtual uint64, backing string) {
	t.Helper()
	out, err := exec.Command("qemu-img", "info", "-U", "--output=json", path).Output()
	if err != nil {
		t.Fatalf("qemu-img info %s: %v", path, err)
	}
	var x struct {
		Format      string `json:"format"`
		VirtualSize uint64 `json:"virtual-size"`
		Backing     string `json:"backing-filename"`
	}
	if err := json.Unmarshal(out, &x); err != nil {
		t.Fatal(err)
	}
	return x.Format, x.VirtualSize, x.Backing
}

func TestVolumeCreateRawAndQcow2(t *testing.T) {
	e := newEnv(t)
	p := e.startPool("p")
	dir := filepath.Join(e.root, "p")

	// Raw: capacity with a unit, allocation 0 gives a sparse file.
	sparse := e.createVol(p, "<volume><name>sparse.img</name><capacity unit='MiB'>4</capacity><allocation>0</allocation><target><permissions><mode>0640</mode></permissions></target></volume>", 0)
	path := filepath.Join(dir, "sparse.img")
	if sparse.Key != path || sparse.Pool != "p" || sparse.Name != "sparse.img" {
		t.Fatalf("ref %+v", sparse)
	}
	st, err := os.Stat(path)
	if err != nil || st.Size() != 4<<20 || st.Mode().Perm() != 0o640 {
		t.Fatalf("sparse file %v %v", st, err)
	}
	info, err := e.d.StorageVolGetInfo(ctx, sparse, 0)
	if err != nil || info.Type != libvirt.StorageVolFile || info.Capacity != 4<<20 || info.Allocation != 0 {
		t.Fatalf("sparse info %+v %v", info, err)
	}
	// Without an allocation, libvirt allocates the whole capacity.
	full := e.createVol(p, volXML("full.img", "65536", "raw", ""), 0)
	if info, _ := e.d.StorageVolGetInfo(ctx, full, 0); info.Allocation < 65536 {
		t.Fatalf("full info %+v", info)
	}
	// qcow2, metadata preallocated.
	q := e.createVol(p, volXML("disk.qcow2", "<capacity unit='M'>10</capacity>", "qcow2", ""), libvirt.StorageVolCreatePreallocMetadata)
	if f, size, _ := qemuImgInfo(t, filepath.Join(dir, "disk.qcow2")); f != "qcow2" || size != 10<<20 {
		t.Fatalf("qemu-img sees %s %d", f, size)
	}
	info, err = e.d.StorageVolGetInfo(ctx, q, 0)
	// Fully allocated (no <allocation>): qemu-img's falloc preallocation.
	if err != nil || info.Capacity != 10<<20 || info.Allocation < 10<<20 {
		t.Fatalf("qcow2 info %+v %v", info, err)
	}
	meta := e.createVol(p, volXML("meta.qcow2", "<capacity unit='M'>10</capacity>", "qcow2", "<allocation>0</allocation>"), libvirt.StorageVolCreatePreallocMetadata)
	if info, _ := e.d.StorageVolGetInfo(ctx, meta, 0); info.Allocation >= 10<<20 || info.Allocation == 0 {
		t.Fatalf("metadata-preallocated qcow2 %+v", info)
	}
	if err := e.d.StorageVolDelete(ctx, meta, 0); err != nil {
		t.Fatal(err)
	}
	doc, err := e.d.StorageVolGetXMLDesc(ctx, q, 0)
	if err != nil {
		t.Fatal(err)
	}
	qpath := filepath.Join(dir, "disk.qcow2")
	for _, want := range []string{
		"<volume type='file'>\n  <name>disk.qcow2</name>\n  <key>" + qpath + "</key>\n  <source>\n  </source>\n  <capacity unit='bytes'>10485760</capacity>\n  <allocation unit='bytes'>",
		"<physical unit='bytes'>", "<target>\n    <path>" + qpath + "</path>\n    <format type='qcow2'/>\n    <permissions>\n      <mode>0600</mode>\n",
		"<timestamps>\n      <atime>", "<compat>0.10</compat>\n    <clusterSize unit='B'>65536</clusterSize>\n  </target>\n</volume>\n",
	} {
		if !strings.Contains(doc, want) {
			t.Fatalf("volume XML lacks %q:\n%s", want, doc)
		}
	}
	// An overlay on the qcow2, with the backing format probed.
	ov := e.createVol(p, "<volume><name>overlay.qcow2</name><target><format type='qcow2'/></target><backingStore><path>"+qpath+"</path></backingStore></volume>", 0)
	if f, size, back := qemuImgInfo(t, filepath.Join(dir, "overlay.qcow2")); f != "qcow2" || size != 10<<20 || back != qpath {
		t.Fatalf("overlay: %s %d %q", f, size, back)
	}
	doc, _ = e.d.StorageVolGetXMLDesc(ctx, ov, 0)
	if !strings.Contains(doc, "<backingStore>\n    <path>"+qpath+"</path>\n    <format type='qcow2'/>\n    <permissions>") {
		t.Fatalf("overlay XML:\n%s", doc)
	}
	if src, err := e.d.ResolveVolume(ctx, "p", "overlay.qcow2"); err != nil || src.Path != filepath.Join(dir, "overlay.qcow2") || src.Type != "file" || src.Format != "qcow2" {
		t.Fatalf("resolve %+v %v", src, err)
	}

	// Errors.
	_, err = e.d.StorageVolCreateXML(ctx, p, volXML("disk.qcow2", "1", "raw", ""), 0)
	wantErr(t, err, libvirt.ErrStorageVolExist, "storage volume 'disk.qcow2' exists already")
	_, err = e.d.StorageVolCreateXML(ctx, p, volXML("x", "1", "cloop", ""), 0)
	wantErr(t, err, libvirt.ErrConfigUnsupported, "volume format 'cloop' is not supported")
	// The other formats qemu-img makes: created, then found again by a
	// refresh with their format and virtual size.
	for _, f := range []string{"qcow", "qed", "vmdk", "vpc", "vdi"} {
		if _, err := e.d.StorageVolCreateXML(ctx, p, volXML("img."+f, "4194304", f, ""), 0); err != nil {
			t.Fatalf("create %s: %v", f, err)
		}
	}
	if err := e.d.StoragePoolRefresh(ctx, p, 0); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"qcow", "qed", "vmdk", "vpc", "vdi"} {
		v, err := e.d.StorageVolLookupByName(ctx, p, "img."+f)
		if err != nil {
			t.Fatal(err)
		}
		x, _ := e.d.StorageVolGetXMLDesc(ctx, v, 0)
		info, _ := e.d.StorageVolGetInfo(ctx, v, 0)
		// vpc rounds its size to its own geometry.
		if !strings.Contains(x, "<format type='"+f+"'/>") || info.Capacity < 4194304 || info.Capacity > 4194304+1<<20 {
			t.Errorf("%s after a refresh: capacity %d\n%s", f, info.Capacity, x)
		}
		if err := e.d.StorageVolDelete(ctx, v, 0); err != nil {
			t.Fatal(err)
		}
	}
	_, err = e.d.StorageVolCreateXML(ctx, p, volXML("x", "1", "nonsense", ""), 0)
	wantErr(t, err, libvirt.ErrConfigUnsupported, "unknown volume format type nonsense")
	_, err = e.d.StorageVolCreateXML(ctx, p, "<volume><name>x</name></volume>", 0)
	wantErr(t, err, libvirt.ErrXMLError, "missing capacity element")
	_, err = e.d.StorageVolCreateXML(ctx, p, "<volume><capacity>1</capacity></volume>", 0)
	wantErr(t, err, libvirt.ErrXMLError, "missing volume name element")
	_, err = e.d.StorageVolCreateXML(ctx, p, "<volume><name>x</name><capacity unit='zz'>1</capacity></volume>", 0)
	wantErr(t, err, libvirt.ErrInvalidArg, "unknown suffix 'zz'")
	_, err = e.d.StorageVolCreateXML(ctx, p, "<volume><name>x</name><capacity unit='EiB'>100</capacity></volume>", 0)
	wantErr(t, err, libvirt.ErrOverflow, "")
	_, err = e.d.StorageVolCreateXML(ctx, p, "<volume><name>a/b</name><capacity>1</capacity></volume>", 0)
	wantErr(t, err, libvirt.ErrOperationInvalid, "volume name 'a/b' cannot contain '/'")
	_, err = e.d.StorageVolCreateXML(ctx, p, volXML("m", "1024", "raw", ""), libvirt.StorageVolCreatePreallocMetadata)
	wantErr(t, err, libvirt.ErrOperationUnsupported, "metadata preallocation is not supported for raw volumes")
	_, err = e.d.StorageVolCreateXML(ctx, p, "<volume", 0)
	wantErr(t, err, libvirt.ErrXMLDetail, "(storage_volume_definition)")
	if err := os.WriteFile(filepath.Join(dir, "outside"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = e.d.StorageVolCreateXML(ctx, p, volXML("outside", "1024", "raw", ""), 0)
	wantErr(t, err, libvirt.ErrOperationInvalid, "volume target path '"+filepath.Join(dir, "outside")+"' already exists")

	// Lookups: name, key, path (over all active pools).
	if v, err := e.d.StorageVolLookupByName(ctx, p, "full.img"); err != nil || v != full {
		t.Fatalf("by name %v %v", v, err)
	}
	if v, err := e.d.StorageVolLookupByKey(ctx, full.Key); err != nil || v != full {
		t.Fatalf("by key %v %v", v, err)
	}
	if v, err := e.d.StorageVolLookupByPath(ctx, dir+"//full.img"); err != nil || v != full {
		t.Fatalf("by path %v %v", v, err)
	}
	_, err = e.d.StorageVolLookupByName(ctx, p, "nope")
	wantErr(t, err, libvirt.ErrNoStorageVol, "Storage volume not found: no storage vol with matching name 'nope'")
	_, err = e.d.StorageVolLookupByKey(ctx, "/nope")
	wantErr(t, err, libvirt.ErrNoStorageVol, "no storage vol with matching key /nope")
	_, err = e.d.StorageVolLookupByPath(ctx, "/nope")
	wantErr(t, err, libvirt.ErrNoStorageVol, "no storage vol with matching path '/nope'")
	_, err = e.d.StorageVolGetPath(ctx, libvirt.StorageVol{Pool: "p", Name: "nope"})
	wantErr(t, err, libvirt.ErrNoStorageVol, "'nope'")
	_, err = e.d.StorageVolGetPath(ctx, libvirt.StorageVol{Pool: "zz", Name: "nope"})
	wantErr(t, err, libvirt.ErrNoStoragePool, "no storage pool with matching name 'zz'")
	if path, err := e.d.StorageVolGetPath(ctx, q); err != nil || path != qpath {
		t.Fatalf("path %q %v", path, err)
	}

	// The file made outside is a volume after a refresh; so is a
	// subdirectory; garbage files do not stop the refresh.
	if _, err := e.d.StorageVolLookupByName(ctx, p, "outside"); err == nil {
		t.Fatal("outside file seen before refresh")
	}
	os.WriteFile(filepath.Join(dir, "garbage.qcow2"), append([]byte("QFI\xfb\x00\x00\x00\x03"), bytes.Repeat([]byte{0xff}, 200)...), 0o600)
	os.WriteFile(filepath.Join(dir, "short"), []byte("QFI"), 0o600)
	os.Mkdir(filepath.Join(dir, "sub"), 0o700)
	os.Symlink("/nonexistent/target", filepath.Join(dir, "dangling"))
	os.WriteFile(filepath.Join(dir, "not-utf8-\xff"), nil, 0o600)
	os.WriteFile(filepath.Join(dir, "ctrl-\x01"), nil, 0o600)
	if err := e.d.StoragePoolRefresh(ctx, p, 0); err != nil {
		t.Fatal(err)
	}
	vols, _ := e.d.StoragePoolListVolumes(ctx, p)
	var names []string
	for _, v := range vols {
		names = append(names, v.Name)
	}
	want := []string{"disk.qcow2", "full.img", "garbage.qcow2", "outside", "overlay.qcow2", "short", "sparse.img", "sub"}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("volumes %v, want %v", names, want)
	}
	sub, _ := e.d.StorageVolLookupByName(ctx, p, "sub")
	if info, _ := e.d.StorageVolGetInfo(ctx, sub, 0); info.Type != libvirt.StorageVolDir {
		t.Fatalf("sub info %+v", info)
	}
	garbage, _ := e.d.StorageVolLookupByName(ctx, p, "garbage.qcow2")
	if doc, _ := e.d.StorageVolGetXMLDesc(ctx, garbage, 0); !strings.Contains(doc, "<format type='raw'/>") {
		t.Fatalf("garbage:\n%s", doc)
	}

	// Delete.
	if err := e.d.StorageVolDelete(ctx, sparse, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("file left: %v", err)
	}
	wantErr(t, e.d.StorageVolDelete(ctx, sparse, 0), libvirt.ErrNoStorageVol, "'sparse.img'")
}

func TestVolumeResize(t *testing.T) {
	e := newEnv(t)
	p := e.startPool("p")
	raw := e.createVol(p, volXML("r.img", "1048576", "raw", "<allocation>0</allocation>"), 0)
	q := e.createVol(p, volXML("q.qcow2", "1048576", "qcow2", ""), 0)

	wantErr(t, e.d.StorageVolResize(ctx, raw, 4096, 0), libvirt.ErrInvalidArg,
		"Can't shrink capacity below current capacity unless shrink flag explicitly specified")
	wantErr(t, e.d.StorageVolResize(ctx, q, 1024, libvirt.StorageVolResizeDelta|libvirt.StorageVolResizeShrink|1<<4), libvirt.ErrInvalidArg, "unsupported flags")
	if err := e.d.StorageVolResize(ctx, raw, 1<<20, libvirt.StorageVolResizeDelta); err != nil {
		t.Fatal(err)
	}
	if info, _ := e.d.StorageVolGetInfo(ctx, raw, 0); info.Capacity != 2<<20 || info.Allocation != 0 {
		t.Fatalf("raw grown %+v", info)
	}
	if err := e.d.StorageVolResize(ctx, raw, 512<<10, libvirt.StorageVolResizeShrink); err != nil {
		t.Fatal(err)
	}
	if err := e.d.StorageVolResize(ctx, raw, 1<<20, libvirt.StorageVolResizeAllocate); err != nil {
		t.Fatal(err)
	}
	if info, _ := e.d.StorageVolGetInfo(ctx, raw, 0); info.Capacity != 1<<20 || info.Allocation < 1<<20 {
		t.Fatalf("raw allocated %+v", info)
	}
	// Allocated bytes cannot be given up by a shrink.
	wantErr(t, e.d.StorageVolResize(ctx, raw, 4096, libvirt.StorageVolResizeShrink), libvirt.ErrInvalidArg, "can't shrink capacity below existing allocation")

	if err := e.d.StorageVolResize(ctx, q, 8<<20, 0); err != nil {
		t.Fatal(err)
	}
	if _, size, _ := qemuImgInfo(t, q.Key); size != 8<<20 {
		t.Fatalf("qcow2 grown to %d", size)
	}
	wantErr(t, e.d.StorageVolResize(ctx, q, 16<<20, libvirt.StorageVolResizeAllocate), libvirt.ErrOperationUnsupported, "preallocate is only supported for raw type volume")
	if err := e.d.StorageVolResize(ctx, q, 2<<20, libvirt.StorageVolResizeDelta|libvirt.StorageVolResizeShrink); err != nil {
		t.Fatal(err)
	}
	if info, _ := e.d.StorageVolGetInfo(ctx, q, 0); info.Capacity != 6<<20 {
		t.Fatalf("qcow2 shrunk %+v", info)
	}
	// qemu-img takes multiples of 512: the size is rounded up.
	if err := e.d.StorageVolResize(ctx, q, 6<<20+1, 0); err != nil {
		t.Fatal(err)
	}
	if info, _ := e.d.StorageVolGetInfo(ctx, q, 0); info.Capacity != 6<<20+512 {
		t.Fatalf("qcow2 odd size %+v", info)
	}
	wantErr(t, e.d.StorageVolResize(ctx, raw, 1<<62, libvirt.StorageVolResizeAllocate), libvirt.ErrOperationFailed, "Not enough space left in storage pool")
}

// Volumes created at once, with lookups and info meanwhile, all arrive.
func TestConcurrentCreates(t *testing.T) {
	e := newEnv(t)
	p := e.startPool("p")
	errs := make(chan error, 16)
	for i := 0; i < 8; i++ {
		go func(i int) {
			format := "raw"
			if i%2 == 1 {
				format = "qcow2"
			}
			v, err := e.d.StorageVolCreateXML(ctx, p, volXML("v"+string(rune('0'+i)), "65536", format, "<allocation>0</allocation>"), 0)
			if err == nil {
				_, err = e.d.StorageVolGetInfo(ctx, v, 0)
			}
			errs <- err
		}(i)
		go func() {
			_, err := e.d.StoragePoolListVolumes(ctx, p)
			errs <- err
		}()
	}
	for i := 0; i < 16; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if vols, _ := e.d.StoragePoolListVolumes(ctx, p); len(vols) != 8 {
		t.Fatalf("%d volumes", len(vols))
	}
}
