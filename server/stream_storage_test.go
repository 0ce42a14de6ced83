package server_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/driver"
	"github.com/govirtd/govirtd/rpc"
	"github.com/govirtd/govirtd/server"
	"github.com/govirtd/govirtd/server/config"
	"github.com/govirtd/govirtd/xdr"
)

// fakeVolumes is a storage driver with one volume in memory: segments to
// download (data, or holes with nil data), and what an upload wrote.
type fakeVolumes struct {
	driver.Storage
	segments []segment

	mu       sync.Mutex
	uploaded []segment
	closed   chan string // "closed" or "aborted", per upload / download end
}

type segment struct {
	data []byte
	hole int64
}

func (f *fakeVolumes) SetStoragePoolEventSink(func(driver.StoragePoolEvent)) {}

func (f *fakeVolumes) StorageVolDownload(ctx context.Context, v libvirt.StorageVol, offset, length uint64, flags libvirt.StorageVolDownloadFlags) (driver.VolumeReader, error) {
	return &fakeReader{f: f, segs: f.segments, sparse: flags&libvirt.StorageVolDownloadSparseStream != 0}, nil
}

func (f *fakeVolumes) StorageVolUpload(ctx context.Context, v libvirt.StorageVol, offset, length uint64, flags libvirt.StorageVolUploadFlags) (driver.VolumeWriter, error) {
	return &fakeWriter{f: f}, nil
}

type fakeReader struct {
	f      *fakeVolumes
	segs   []segment
	sparse bool
}

func (r *fakeReader) ReadSegment(buf []byte) (int, int64, error) {
	if len(r.segs) == 0 {
		return 0, 0, io.EOF
	}
	s := r.segs[0]
	r.segs = r.segs[1:]
	if s.hole > 0 && r.sparse {
		return 0, s.hole, nil
	}
	if s.hole > 0 {
		s.data = make([]byte, s.hole)
	}
	n := copy(buf, s.data)
	if n < len(s.data) {
		r.segs = append([]segment{{data: s.data[n:]}}, r.segs...)
	}
	return n, 0, nil
}

func (r *fakeReader) Close() error { r.f.closed <- "closed"; return nil }

type fakeWriter struct{ f *fakeVolumes }

func (w *fakeWriter) Write(p []byte) (int, error) {
	w.f.mu.Lock()
	defer w.f.mu.Unlock()
	w.f.uploaded = append(w.f.uploaded, segment{data: bytes.Clone(p)})
	return len(p), nil
}

func (w *fakeWriter) Hole(n int64) error {
	w.f.mu.Lock()
	defer w.f.mu.Unlock()
	w.f.uploaded = append(w.f.uploaded, segment{hole: n})
	return nil
}

func (w *fakeWriter) Close() error { w.f.closed <- "closed"; return nil }
func (w *fakeWriter) Abort()       { w.f.closed <- "aborted" }

func startStorageServer(t *testing.T, f *fakeVolumes) string {
	t.Helper()
	cfg := config.Default()
	cfg.UnixSockDir = t.TempDir()
	cfg.StateDir = t.TempDir()
	cfg.KeepaliveInterval = -1
	drv := &streamDriver{streams: make(chan io.ReadCloser, 1)}
	srv := server.New(cfg, drv, slog.New(slog.NewTextHandler(io.Discard, nil)), server.WithStorage(f))
	if err := srv.Listen(false); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return filepath.Join(cfg.UnixSockDir, "libvirt-sock")
}

func (f *fakeVolumes) waitEnd(t *testing.T, want string) {
	t.Helper()
	select {
	case got := <-f.closed:
		if got != want {
			t.Fatalf("volume stream ended %q, want %q", got, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("volume stream did not end (%s)", want)
	}
}

var testVol = libvirt.StorageVol{Pool: "p", Name: "v", Key: "/p/v"}

// A sparse download: the reply, then data and hole messages in order, an
// empty STREAM CONTINUE for the end; the client's finish is confirmed with
// STREAM OK.
func TestVolumeDownloadSparse(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 300*1024) // more than one message
	f := &fakeVolumes{segments: []segment{{data: []byte("head")}, {hole: 1 << 20}, {data: big}}, closed: make(chan string, 4)}
	c := dialStream(t, startStorageServer(t, f))
	c.call(rpc.ProcStorageVolDownload, 5, &libvirt.StorageVolDownloadArgs{Vol: testVol, Flags: libvirt.StorageVolDownloadSparseStream})
	if p := c.read(); p.Type != rpc.Reply || p.Status != rpc.OK || p.Serial != 5 {
		t.Fatalf("reply %+v", p.Header)
	}
	var got []byte
	var holes []int64
	for {
		p := c.read()
		if p.Serial != 5 || p.Procedure != rpc.ProcStorageVolDownload || p.Status != rpc.Continue {
			t.Fatalf("stream message %+v", p.Header)
		}
		if p.Type == rpc.StreamHole {
			var h struct {
				Length int64
				Flags  uint32
			}
			if err := xdr.Unmarshal(p.Body, &h); err != nil {
				t.Fatal(err)
			}
			holes = append(holes, h.Length)
			continue
		}
		if len(p.Body) > 256*1024 {
			t.Fatalf("a data message of %d bytes: over libvirt's 256 KiB", len(p.Body))
		}
		if len(p.Body) == 0 {
			break // end of data
		}
		got = append(got, p.Body...)
	}
	if !bytes.Equal(got, append([]byte("head"), big...)) || len(holes) != 1 || holes[0] != 1<<20 {
		t.Fatalf("downloaded %d bytes, holes %v", len(got), holes)
	}
	f.waitEnd(t, "closed")
	c.write(rpc.Header{Procedure: rpc.ProcStorageVolDownload, Type: rpc.Stream, Serial: 5, Status: rpc.OK}, nil)
	if p := c.read(); p.Type != rpc.Stream || p.Status != rpc.OK || p.Serial != 5 {
		t.Fatalf("finish confirmation %+v", p.Header)
	}
	c.hostname(6)
}

// A client that aborts a download stops the sender; a client that sends
// data on a download stream gets a STREAM ERROR; the connection lives on.
func TestVolumeDownloadAbortAndBadData(t *testing.T) {
	f := &fakeVolumes{closed: make(chan string, 4)}
	for i := 0; i < 64; i++ {
		f.segments = append(f.segments, segment{data: bytes.Repeat([]byte{byte(i)}, 200*1024)})
	}
	c := dialStream(t, startStorageServer(t, f))
	c.call(rpc.ProcStorageVolDownload, 7, &libvirt.StorageVolDownloadArgs{Vol: testVol})
	if p := c.read(); p.Type != rpc.Reply || p.Status != rpc.OK {
		t.Fatalf("reply %+v", p.Header)
	}
	c.write(rpc.Header{Procedure: rpc.ProcStorageVolDownload, Type: rpc.Stream, Serial: 7, Status: rpc.Error}, nil)
	// Data already on its way is read past; the abort's confirmation comes.
	for {
		p := c.read()
		if p.Type == rpc.Stream && p.Status == rpc.OK {
			break
		}
	}
	f.waitEnd(t, "closed")

	f.segments = []segment{{data: []byte("a")}}
	c.call(rpc.ProcStorageVolDownload, 8, &libvirt.StorageVolDownloadArgs{Vol: testVol})
	if p := c.read(); p.Type != rpc.Reply || p.Status != rpc.OK {
		t.Fatalf("reply %+v", p.Header)
	}
	c.write(rpc.Header{Procedure: rpc.ProcStorageVolDownload, Type: rpc.Stream, Serial: 8, Status: rpc.Continue}, []byte("junk"))
	sawError := false
	for i := 0; i < 4 && !sawError; i++ {
		p := c.read()
		sawError = p.Type == rpc.Stream && p.Status == rpc.Error
	}
	if !sawError {
		t.Fatal("no STREAM ERROR for data sent on a download")
	}
	c.hostname(9)
}

// A sparse upload delivers data and holes to the volume in order and is
// confirmed after the writer closed; a hole on a plain upload aborts it.
func TestVolumeUploadSparse(t *testing.T) {
	f := &fakeVolumes{closed: make(chan string, 4)}
	c := dialStream(t, startStorageServer(t, f))
	up := func(serial uint32, flags libvirt.StorageVolUploadFlags) {
		c.call(rpc.ProcStorageVolUpload, serial, &libvirt.StorageVolUploadArgs{Vol: testVol, Flags: flags})
		if p := c.read(); p.Type != rpc.Reply || p.Status != rpc.OK {
			t.Fatalf("reply %+v", p.Header)
		}
	}
	send := func(serial uint32, typ rpc.Type, status rpc.Status, body []byte) {
		c.write(rpc.Header{Procedure: rpc.ProcStorageVolUpload, Type: typ, Serial: serial, Status: status}, body)
	}
	hole, _ := xdr.Marshal(&struct {
		Length int64
		Flags  uint32
	}{Length: 4096})
	up(3, libvirt.StorageVolUploadSparseStream)
	send(3, rpc.Stream, rpc.Continue, []byte("one"))
	send(3, rpc.StreamHole, rpc.Continue, hole)
	send(3, rpc.Stream, rpc.Continue, []byte("two"))
	send(3, rpc.Stream, rpc.OK, nil)
	if p := c.read(); p.Type != rpc.Stream || p.Status != rpc.OK || p.Serial != 3 {
		t.Fatalf("upload end %+v", p.Header)
	}
	f.waitEnd(t, "closed")
	f.mu.Lock()
	got := f.uploaded
	f.mu.Unlock()
	if len(got) != 3 || string(got[0].data) != "one" || got[1].hole != 4096 || string(got[2].data) != "two" {
		t.Fatalf("uploaded %+v", got)
	}

	up(4, 0)
	send(4, rpc.StreamHole, rpc.Continue, hole)
	if p := c.read(); p.Type != rpc.Stream || p.Status != rpc.Error || p.Serial != 4 {
		t.Fatalf("hole on a plain upload: %+v", p.Header)
	}
	f.waitEnd(t, "aborted")
	c.hostname(5)
}
