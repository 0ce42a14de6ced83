package savefile

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
)

const domXML = "<domain type='qemu'>\n  <name>sv</name>\n</domain>\n"

// writeImage makes a complete image with stream as QEMU's part.
func writeImage(t *testing.T, dir string, running bool, stream string) string {
	t.Helper()
	path := filepath.Join(dir, "x.save")
	f, err := Create(path, domXML, "<cookie>\n</cookie>\n", running)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(stream); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return path
}

// The layout is libvirt's byte for byte: a 92-byte header in host order,
// the XML and cookie NUL-terminated, 64 KiB of zeros, then the stream.
func TestLayoutIsLibvirts(t *testing.T) {
	path := writeImage(t, t.TempDir(), true, "QEVM-stream")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(b[:16]) != Partial {
		t.Fatalf("magic before Finish: %q", b[:16])
	}
	le := binary.LittleEndian
	xmlLen := uint32(len(domXML) + 1)
	cookieLen := uint32(len("<cookie>\n</cookie>\n") + 1)
	for off, want := range map[int]uint32{16: 2, 20: xmlLen + cookieLen + 65536, 24: 1, 28: 0, 32: xmlLen} {
		if got := le.Uint32(b[off:]); got != want {
			t.Errorf("header word at %d = %d, want %d", off, got, want)
		}
	}
	if !bytes.Equal(b[36:92], make([]byte, 56)) {
		t.Error("unused header words are not zero")
	}
	if string(b[92:92+len(domXML)]) != domXML || b[92+len(domXML)] != 0 {
		t.Error("XML not right after the header, NUL-terminated")
	}
	streamAt := 92 + int(xmlLen+cookieLen) + 65536
	if string(b[streamAt:]) != "QEVM-stream" {
		t.Errorf("stream at %d: %q", streamAt, b[streamAt:])
	}

	if _, err := Read(path); compat.As(err).Message() != "operation failed: save image is incomplete" {
		t.Fatalf("reading an incomplete image: %v", err)
	}
	if err := Finish(path); err != nil {
		t.Fatal(err)
	}
	f, im, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rest, _ := io.ReadAll(f)
	if im.XML != domXML || im.Cookie != "<cookie>\n</cookie>\n" || !im.WasRunning || string(rest) != "QEVM-stream" {
		t.Fatalf("read back %+v, stream %q", im, rest)
	}
}

func TestUpdateXML(t *testing.T) {
	path := writeImage(t, t.TempDir(), true, "stream")
	if err := Finish(path); err != nil {
		t.Fatal(err)
	}
	paused := false
	bigger := strings.Replace(domXML, "</domain>", "  <description>"+strings.Repeat("x", 1000)+"</description>\n</domain>", 1)
	if err := UpdateXML(path, bigger, &paused); err != nil {
		t.Fatal(err)
	}
	f, im, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(f)
	f.Close()
	if im.XML != bigger || im.WasRunning || im.Cookie == "" || string(rest) != "stream" {
		t.Fatalf("after update: %+v, stream %q", im, rest)
	}
	err = UpdateXML(path, strings.Repeat("y", 70000), nil)
	if le := compat.As(err); le.Code != libvirt.ErrOperationFailed || le.Message() != "operation failed: new xml too large to fit in file" {
		t.Fatalf("oversized XML: %v", err)
	}
}

// Errors are libvirt's (qemuSaveImageReadHeader, qemuDomainOpenFile).
func TestBadImages(t *testing.T) {
	dir := t.TempDir()
	hdr := func(magic string, version, dataLen, format uint32) []byte {
		h := Header{Version: version, DataLen: dataLen, Format: format}
		return h.marshal(magic)
	}
	for _, c := range []struct {
		data []byte
		msg  string
	}{
		{[]byte("short"), "operation failed: failed to read qemu header"},
		{bytes.Repeat([]byte("not an image "), 10), "operation failed: image magic is incorrect"},
		{hdr(Partial, 2, 10, 0), "operation failed: save image is incomplete"},
		{hdr(Magic, 3, 10, 0), "operation failed: image version is not supported (50331648 > 2)"},
		{hdr(Magic, 2, 10, 9), "operation failed: unsupported save image format: 9"},
		{hdr(Magic, 2, 0, 0), "operation failed: invalid header data length: 0"},
		{hdr(Magic, 2, 100, 0), "operation failed: failed to read domain XML"},
	} {
		p := filepath.Join(dir, "bad")
		os.WriteFile(p, c.data, 0o600)
		_, err := Read(p)
		if err == nil || compat.As(err).Message() != c.msg {
			t.Errorf("%q: %v, want %q", c.data[:min(len(c.data), 20)], err, c.msg)
		}
	}
	_, err := Read(filepath.Join(dir, "missing"))
	if le := compat.As(err); le.Code != libvirt.ErrSystemError || le.Message() != "Failed to open file '"+filepath.Join(dir, "missing")+"': No such file or directory" {
		t.Errorf("missing file: %v", err)
	}
}

// An image written on a big-endian host reads the same.
func TestOtherByteOrder(t *testing.T) {
	b := make([]byte, HeaderSize)
	copy(b, Magic)
	be := binary.BigEndian
	be.PutUint32(b[16:], 2)
	be.PutUint32(b[20:], uint32(len(domXML)+1))
	be.PutUint32(b[24:], 1)
	im, err := Parse(bytes.NewReader(append(append(b, domXML...), 0)))
	if err != nil || im.XML != domXML || !im.WasRunning {
		t.Fatalf("%+v %v", im, err)
	}
}
