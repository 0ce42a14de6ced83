// Package savefile reads and writes libvirt's QEMU save image format
// (src/qemu/qemu_saveimage.c), so that images written by virsh save or
// managedsave on govirtd and on libvirtd 9.0 are interchangeable:
//
//	offset 0   header, 92 bytes, host byte order (little-endian here):
//	           magic[16] "LibvirtQemudSave" ("LibvirtQemudPart" while
//	           incomplete), version (2), data_len, was_running, format
//	           (0 = raw), cookieOffset, 14 unused words
//	offset 92  data_len bytes: the domain XML and its NUL, then at
//	           cookieOffset (0: no cookie) the save cookie XML and its NUL,
//	           then zeros (libvirt leaves 64 KiB of room so the XML can be
//	           edited in place, virsh save-image-define)
//	then       QEMU's migration stream, to the end of the file
//
// The header is written with the "incomplete" magic first and the real one
// once QEMU has written the whole stream (Finish), so a save that failed
// half way is never restored.
package savefile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
)

// Magic strings and version of the format (libvirt calls the string ABI).
const (
	Magic   = "LibvirtQemudSave"
	Partial = "LibvirtQemudPart"
	Version = 2
	// HeaderSize is sizeof(virQEMUSaveHeader).
	HeaderSize = 16 + 4*5 + 4*14
	// padding is the room libvirt leaves after the XML and cookie.
	padding = 64 * 1024
	// maxDataLen bounds the XML area a reader accepts: a domain XML is a
	// few KiB; a corrupt header must not make the daemon allocate 4 GiB.
	maxDataLen = 64 << 20
)

// Compression formats of the header (virQEMUSaveFormat); only raw images
// are written and restored by govirtd.
const (
	FormatRaw  = 0
	formatLast = 7 // raw gzip bzip2 xz lzop zstd sparse
)

// Header is the decoded fixed part of an image.
type Header struct {
	Version      uint32
	DataLen      uint32
	WasRunning   bool
	Format       uint32
	CookieOffset uint32
}

// Image is what a save image says about the domain in it.
type Image struct {
	Header
	XML    string
	Cookie string // "" when the image has none
}

// StreamOffset is where QEMU's migration stream starts in the file.
func (im *Image) StreamOffset() int64 { return HeaderSize + int64(im.DataLen) }

func (h *Header) marshal(magic string) []byte {
	b := make([]byte, HeaderSize)
	copy(b, magic)
	le := binary.LittleEndian
	le.PutUint32(b[16:], h.Version)
	le.PutUint32(b[20:], h.DataLen)
	if h.WasRunning {
		le.PutUint32(b[24:], 1)
	}
	le.PutUint32(b[28:], h.Format)
	le.PutUint32(b[32:], h.CookieOffset)
	return b
}

func opFailed(format string, args ...any) error {
	return compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, format, args...)
}

// Parse reads an image's header and XML from r (positioned at the start
// of the file), with libvirt's errors for a file that is not a complete
// save image (qemuSaveImageReadHeader).
func Parse(r io.Reader) (*Image, error) {
	b := make([]byte, HeaderSize)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, opFailed("failed to read qemu header")
	}
	switch string(b[:16]) {
	case Magic:
	case Partial:
		return nil, opFailed("save image is incomplete")
	default:
		return nil, opFailed("image magic is incorrect")
	}
	var order binary.ByteOrder = binary.LittleEndian
	if order.Uint32(b[16:]) > Version {
		order = binary.BigEndian // written on a host of the other byte order
	}
	im := &Image{Header: Header{
		Version:      order.Uint32(b[16:]),
		DataLen:      order.Uint32(b[20:]),
		WasRunning:   order.Uint32(b[24:]) != 0,
		Format:       order.Uint32(b[28:]),
		CookieOffset: order.Uint32(b[32:]),
	}}
	if im.Version > Version {
		return nil, opFailed("image version is not supported (%d > %d)", im.Version, Version)
	}
	if im.Format >= formatLast {
		return nil, opFailed("unsupported save image format: %d", im.Format)
	}
	if int32(im.DataLen) <= 0 || im.DataLen > maxDataLen {
		return nil, opFailed("invalid header data length: %d", int32(im.DataLen))
	}
	xmlLen := im.DataLen
	if im.CookieOffset != 0 {
		if im.CookieOffset > im.DataLen {
			return nil, opFailed("invalid header data length: %d", int32(im.DataLen))
		}
		xmlLen = im.CookieOffset
	}
	// Read as much as is there rather than allocating what a header
	// claims: a short file then costs its own size, not data_len.
	xml, err := io.ReadAll(io.LimitReader(r, int64(xmlLen)))
	if err != nil || len(xml) != int(xmlLen) {
		return nil, opFailed("failed to read domain XML")
	}
	cookie, err := io.ReadAll(io.LimitReader(r, int64(im.DataLen-xmlLen)))
	if err != nil || len(cookie) != int(im.DataLen-xmlLen) {
		return nil, opFailed("failed to read cookie")
	}
	im.XML = cString(xml)
	if im.CookieOffset != 0 {
		im.Cookie = cString(cookie)
	}
	return im, nil
}

// cString is the text up to the first NUL, as C reads it.
func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// Open opens an image for restoring: it returns the file positioned at
// the start of QEMU's stream, and what the header says.
func Open(path string) (*os.File, *Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, openError(path, err)
	}
	im, err := Parse(f)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if im.Format != FormatRaw {
		f.Close()
		return nil, nil, compat.Errorf(libvirt.ErrOperationUnsupported, compat.FromQEMU, "compressed save images (format %d) are not supported", im.Format)
	}
	if _, err := f.Seek(im.StreamOffset(), io.SeekStart); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("seek to the migration stream of %s: %w", path, err)
	}
	return f, im, nil
}

// Read returns what an image's header says, without keeping it open.
func Read(path string) (*Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, openError(path, err)
	}
	defer f.Close()
	return Parse(f)
}

// openError is libvirt's qemuDomainOpenFile error, system error text
// after it as virReportSystemError prints it.
func openError(path string, err error) *compat.Error {
	e := compat.Errorf(libvirt.ErrSystemError, compat.FromQEMU, "Failed to open file '%s': %s", path, sysText(err))
	var errno syscall.Errno
	if errors.As(err, &errno) {
		e.Int1 = int32(errno)
	}
	e.Err = err
	return e
}

// sysText is strerror's text for err's errno ("No such file or
// directory"), as libvirt prints it.
func sysText(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		s := errno.Error()
		if s != "" {
			return string(s[0]-'a'+'A') + s[1:]
		}
	}
	return err.Error()
}

// Create starts a new image at path (mode 0600, replacing any file): the
// header with the incomplete magic, the XML, the cookie and libvirt's
// padding. The returned file is positioned where QEMU's stream goes; the
// caller hands it to QEMU, closes it, then calls Finish.
func Create(path, xml, cookie string, wasRunning bool) (*os.File, error) {
	h := Header{Version: Version, WasRunning: wasRunning, Format: FormatRaw}
	data := append([]byte(xml), 0)
	if cookie != "" {
		h.CookieOffset = uint32(len(data))
		data = append(append(data, cookie...), 0)
	}
	h.DataLen = uint32(len(data) + padding)
	data = append(data, make([]byte, padding)...)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		// virQEMUFileOpenAs's words for a file it cannot create.
		e := openError(path, err)
		e.Detail = fmt.Sprintf("Failed to create file '%s': %s", path, sysText(err))
		return nil, e
	}
	if _, err := f.Write(append(h.marshal(Partial), data...)); err != nil {
		f.Close() // the caller decides whether the file goes
		return nil, writeError(path, err)
	}
	return f, nil
}

// Finish marks a fully written image complete: the real magic goes into
// its header, on disk before Finish returns.
func Finish(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return openError(path, err)
	}
	defer f.Close()
	b := make([]byte, len(Partial))
	if _, err := io.ReadFull(f, b); err != nil || string(b) != Partial {
		return opFailed("failed to read qemu header")
	}
	if _, err := f.WriteAt([]byte(Magic), 0); err != nil {
		return writeError(path, err)
	}
	if err := f.Sync(); err != nil {
		return writeError(path, err)
	}
	return nil
}

func writeError(path string, err error) error {
	return compat.Errorf(libvirt.ErrSystemError, compat.FromQEMU, "failed to write header to domain save file '%s': %s", path, sysText(err))
}

// UpdateXML replaces the XML of a complete image in place (virsh
// save-image-define), and was_running when running is not nil. The new XML
// must fit where the old one was: libvirt's rule, the stream after it
// cannot move.
func UpdateXML(path, xml string, running *bool) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return openError(path, err)
	}
	defer f.Close()
	im, err := Parse(f)
	if err != nil {
		return err
	}
	data := append([]byte(xml), 0)
	h := im.Header
	h.CookieOffset = 0
	if im.Cookie != "" {
		h.CookieOffset = uint32(len(data))
		data = append(append(data, im.Cookie...), 0)
	}
	if len(data) > int(h.DataLen) {
		return opFailed("new xml too large to fit in file")
	}
	if running != nil {
		h.WasRunning = *running
	}
	data = append(data, make([]byte, int(h.DataLen)-len(data))...)
	if _, err := f.WriteAt(append(h.marshal(Magic), data...), 0); err != nil {
		return writeError(path, err)
	}
	if err := f.Sync(); err != nil {
		return writeError(path, err)
	}
	return nil
}
