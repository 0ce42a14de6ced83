package storage

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/driver"
)

// readAll drains a volume reader: the bytes (holes as zeros) and the
// number of hole bytes it reported.
func readAll(t *testing.T, r driver.VolumeReader) ([]byte, int64) {
	t.Helper()
	var out bytes.Buffer
	var holes int64
	buf := make([]byte, 4096)
	for {
		n, hole, err := r.ReadSegment(buf)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out.Write(buf[:n])
		out.Write(make([]byte, hole))
		holes += hole
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes(), holes
}

func TestUploadDownload(t *testing.T) {
	e := newEnv(t)
	p := e.startPool("p")
	v := e.createVol(p, volXML("u.img", "4096", "raw", "<allocation>0</allocation>"), 0)
	e.takeEvents()

	// Upload data, a hole, more data: the file grows past its capacity.
	w, err := e.d.StorageVolUpload(ctx, v, 0, 0, libvirt.StorageVolUploadSparseStream)
	if err != nil {
		t.Fatal(err)
	}
	head := bytes.Repeat([]byte("a"), 8192)
	tail := bytes.Repeat([]byte("z"), 100)
	if _, err := w.Write(head); err != nil {
		t.Fatal(err)
	}
	if err := w.Hole(1 << 20); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(tail); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	size := int64(8192 + 1<<20 + 100)
	info, err := e.d.StorageVolGetInfo(ctx, v, 0)
	if err != nil || info.Capacity != uint64(size) {
		t.Fatalf("after upload %+v %v", info, err)
	}
	if ev := e.takeEvents(); len(ev) != 1 || ev[0] != "p:REFRESH" {
		t.Fatalf("events %v", ev)
	}

	// Download it whole, sparse: the hole is reported as one.
	r, err := e.d.StorageVolDownload(ctx, v, 0, 0, libvirt.StorageVolDownloadSparseStream)
	if err != nil {
		t.Fatal(err)
	}
	got, holes := readAll(t, r)
	want := append(append(append([]byte{}, head...), make([]byte, 1<<20)...), tail...)
	if !bytes.Equal(got, want) || holes < 1<<19 {
		t.Fatalf("sparse download: %d bytes, %d in holes", len(got), holes)
	}
	// A range, not sparse: all data.
	r, err = e.d.StorageVolDownload(ctx, v, 8000, 300, 0)
	if err != nil {
		t.Fatal(err)
	}
	got, holes = readAll(t, r)
	if !bytes.Equal(got, want[8000:8300]) || holes != 0 {
		t.Fatalf("ranged download: %d bytes, %d holes", len(got), holes)
	}

	// An upload with a length: writing past it fails, what fit is kept.
	w, err = e.d.StorageVolUpload(ctx, v, 10, 5, 0)
	if err != nil {
		t.Fatal(err)
	}
	n, err := w.Write([]byte("0123456789"))
	wantErr(t, err, libvirt.ErrSystemError, "cannot write to stream: No space left on device")
	if n != 5 {
		t.Fatalf("wrote %d", n)
	}
	wantErr(t, w.Hole(1), libvirt.ErrSystemError, "cannot write to stream")
	w.Abort()
	b, _ := os.ReadFile(v.Key)
	if string(b[8:17]) != "aa01234aa" {
		t.Fatalf("ranged upload wrote %q", b[8:17])
	}
	// A hole over data zeroes it, and a sparse upload sets where the
	// volume ends, as libvirtd's (libvirt-tck's 422-vol-upload-sparse).
	w, _ = e.d.StorageVolUpload(ctx, v, 0, 0, libvirt.StorageVolUploadSparseStream)
	if err := w.Hole(4096); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(v.Key)
	if !bytes.Equal(b, make([]byte, 4096)) {
		t.Fatalf("after a sparse upload of a 4096-byte hole: %d bytes, not all zero", len(b))
	}
	_, err = e.d.StorageVolDownload(ctx, libvirt.StorageVol{Pool: "p", Name: "nope"}, 0, 0, 0)
	wantErr(t, err, libvirt.ErrNoStorageVol, "'nope'")
	_, err = e.d.StorageVolUpload(ctx, v, 0, 0, 1<<3)
	wantErr(t, err, libvirt.ErrInvalidArg, "unsupported flags (0x8) in function storageVolUpload")
}

func TestCloneAndWipe(t *testing.T) {
	e := newEnv(t)
	p := e.startPool("p")
	q := e.startPool("q")
	src := e.createVol(p, volXML("src.img", "1048576", "raw", "<allocation>0</allocation>"), 0)
	data := bytes.Repeat([]byte("data"), 1024)
	if err := os.WriteFile(src.Key, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(src.Key, 1<<20); err != nil {
		t.Fatal(err)
	}
	// raw to raw, larger, sparse, in another pool.
	c, err := e.d.StorageVolCreateXMLFrom(ctx, q, "<volume><name>copy.img</name><capacity>2097152</capacity><allocation>0</allocation></volume>", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(c.Key)
	if len(b) != 2<<20 || !bytes.Equal(b[:len(data)], data) || !bytes.Equal(b[len(data):], make([]byte, len(b)-len(data))) {
		t.Fatalf("clone content wrong (%d bytes)", len(b))
	}
	if info, _ := e.d.StorageVolGetInfo(ctx, c, 0); info.Allocation > 1<<20 {
		t.Fatalf("sparse clone allocated %d", info.Allocation)
	}
	// raw to qcow2, the capacity defaulting to the source's.
	cq, err := e.d.StorageVolCreateXMLFrom(ctx, p, "<volume><name>copy.qcow2</name><target><format type='qcow2'/></target></volume>", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	if f, size, _ := qemuImgInfo(t, cq.Key); f != "qcow2" || size != 1<<20 {
		t.Fatalf("converted %s %d", f, size)
	}
	// and back to raw.
	back, err := e.d.StorageVolCreateXMLFrom(ctx, q, "<volume><name>back.img</name></volume>", cq, 0)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(back.Key); !bytes.Equal(b[:len(data)], data) || len(b) != 1<<20 {
		t.Fatal("round trip through qcow2 changed the data")
	}
	_, err = e.d.StorageVolCreateXMLFrom(ctx, p, "<volume><name>copy.qcow2</name></volume>", src, 0)
	wantErr(t, err, libvirt.ErrInternalError, "storage volume name 'copy.qcow2' already in use.")
	_, err = e.d.StorageVolCreateXMLFrom(ctx, p, "<volume><name>n</name></volume>", libvirt.StorageVol{Pool: "p", Name: "missing"}, 0)
	wantErr(t, err, libvirt.ErrNoStorageVol, "'missing'")
	// No temporary file is left behind by a failed build.
	ents, _ := os.ReadDir(filepath.Dir(src.Key))
	for _, e := range ents {
		if len(e.Name()) > len(tmpPrefix) && e.Name()[:len(tmpPrefix)] == tmpPrefix {
			t.Fatalf("left %s", e.Name())
		}
	}

	// Wipe: zeros, size kept.
	if err := e.d.StorageVolWipe(ctx, src, libvirt.StorageVolWipeAlgZero, 0); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(src.Key); len(b) != 1<<20 || !bytes.Equal(b, make([]byte, 1<<20)) {
		t.Fatal("wipe left data")
	}
	full := e.createVol(p, volXML("full.img", "65536", "raw", ""), 0)
	os.WriteFile(full.Key, bytes.Repeat([]byte{7}, 65536), 0o600)
	if err := e.d.StorageVolWipe(ctx, full, libvirt.StorageVolWipeAlgZero, 0); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(full.Key); !bytes.Equal(b, make([]byte, 65536)) {
		t.Fatal("wipe of allocated file left data")
	}
	wantErr(t, e.d.StorageVolWipe(ctx, src, libvirt.StorageVolWipeAlgNnsa, 0), libvirt.ErrSystemError, "Cannot find 'scrub' in path")
	wantErr(t, e.d.StorageVolWipe(ctx, src, 42, 0), libvirt.ErrInvalidArg, "wiping algorithm 42 not supported")
	wantErr(t, e.d.StorageVolWipe(ctx, src, libvirt.StorageVolWipeAlgZero, 1), libvirt.ErrInvalidArg, "unsupported flags (0x1) in function storageVolWipePattern")
}

// A volume being built is invisible and its name taken; the pool cannot
// stop meanwhile.
func TestBuildingVolumeInvisible(t *testing.T) {
	e := newEnv(t)
	p := e.startPool("p")
	// A qemu-img that waits until the test lets it go.
	dir := t.TempDir()
	gate := filepath.Join(dir, "gate")
	script := filepath.Join(dir, "qemu-img")
	os.WriteFile(script, []byte("#!/bin/sh\nwhile [ ! -e "+gate+" ]; do sleep 0.01; done\nexec qemu-img \"$@\"\n"), 0o700)
	e.d.qemuImg = script
	done := make(chan error)
	go func() {
		_, err := e.d.StorageVolCreateXML(ctx, p, volXML("slow.qcow2", "1048576", "qcow2", ""), 0)
		done <- err
	}()
	// Wait for the build to start.
	for {
		e.d.mu.Lock()
		n := len(e.d.pools["p"].building)
		e.d.mu.Unlock()
		if n == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	_, err := e.d.StorageVolLookupByName(ctx, p, "slow.qcow2")
	wantErr(t, err, libvirt.ErrNoStorageVol, "")
	_, err = e.d.StorageVolCreateXML(ctx, p, volXML("slow.qcow2", "1", "raw", ""), 0)
	wantErr(t, err, libvirt.ErrStorageVolExist, "")
	wantErr(t, e.d.StoragePoolDestroy(ctx, p), libvirt.ErrInternalError, "pool 'p' has asynchronous jobs running.")
	if err := e.d.StoragePoolRefresh(ctx, p, 0); err == nil {
		t.Fatal("refresh during a build")
	}
	os.WriteFile(gate, nil, 0o600)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := e.d.StorageVolLookupByName(ctx, p, "slow.qcow2"); err != nil {
		t.Fatal(err)
	}
}
