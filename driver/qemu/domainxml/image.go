package domainxml

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Image is one image of a disk's backing chain.
type Image struct {
	Path   string
	Format string // "raw" or "qcow2"
}

// maxChainDepth bounds a backing chain, as libvirt's
// VIR_STORAGE_MAX_CHAIN_LENGTH does against loops and absurd chains.
const maxChainDepth = 200

// BackingChain returns the images under the image at path (of format),
// from its backing file down to the last image, as libvirt reads the chain
// of every disk at start (qemuDomainDetermineDiskChain): from qcow2
// headers, a relative backing name being relative to the image naming it,
// the backing format from the header's extension or else probed. A raw
// image ends the chain.
func BackingChain(path, format string) ([]Image, error) {
	var chain []Image
	top := path
	seen := map[string]bool{path: true}
	for format == "qcow2" {
		h, err := readQCOW2Header(path)
		if err != nil {
			return nil, err
		}
		if h.backing == "" {
			return chain, nil
		}
		next := h.backing
		if !filepath.IsAbs(next) {
			next = filepath.Join(filepath.Dir(path), next)
		}
		if seen[next] {
			return nil, fmt.Errorf("backing chain of %s loops at %s", top, next)
		}
		seen[next] = true
		format = h.backingFormat
		if format == "" {
			if format, err = probeFormat(next); err != nil {
				return nil, err
			}
		}
		if format != "raw" && format != "qcow2" {
			return nil, fmt.Errorf("%s: backing image format '%s' is not supported by govirtd", next, format)
		}
		chain = append(chain, Image{Path: next, Format: format})
		if len(chain) > maxChainDepth {
			return nil, fmt.Errorf("backing chain of %s is longer than %d images", top, maxChainDepth)
		}
		path = next
	}
	return chain, nil
}

type qcow2Header struct {
	backing, backingFormat string
}

// qcow2 header extension with the backing file's format name.
const qcow2ExtBackingFormat = 0xe2792aca

func readQCOW2Header(path string) (qcow2Header, error) {
	var h qcow2Header
	f, err := os.Open(path)
	if err != nil {
		return h, err
	}
	defer f.Close()
	// Header (big-endian): magic "QFI\xfb", version u32,
	// backing_file_offset u64, backing_file_size u32, ...; version 3 adds
	// header_length (u32 at 100); extensions follow the header (at 72 for
	// version 2).
	var b [104]byte
	n, err := io.ReadFull(f, b[:])
	if err != nil && !(err == io.ErrUnexpectedEOF && n >= 72) {
		return h, fmt.Errorf("%s: reading qcow2 header: %w", path, err)
	}
	if string(b[:4]) != "QFI\xfb" {
		return h, fmt.Errorf("%s: not a qcow2 image", path)
	}
	version := binary.BigEndian.Uint32(b[4:8])
	off := binary.BigEndian.Uint64(b[8:16])
	size := binary.BigEndian.Uint32(b[16:20])
	if off == 0 || size == 0 {
		return h, nil
	}
	if size > 1023 {
		return h, fmt.Errorf("%s: backing file name of %d bytes", path, size)
	}
	name := make([]byte, size)
	if _, err := f.ReadAt(name, int64(off)); err != nil {
		return h, fmt.Errorf("%s: reading backing file name: %w", path, err)
	}
	h.backing = string(name)
	ext := int64(72)
	if version >= 3 && n >= 104 {
		ext = int64(binary.BigEndian.Uint32(b[100:104]))
	}
	// Walk the extensions, which end before the backing file name.
	for i := 0; i < 64 && ext+8 <= int64(off); i++ {
		var eh [8]byte
		if _, err := f.ReadAt(eh[:], ext); err != nil {
			break
		}
		typ, l := binary.BigEndian.Uint32(eh[:4]), binary.BigEndian.Uint32(eh[4:])
		if typ == 0 {
			break
		}
		if typ == qcow2ExtBackingFormat && l > 0 && l < 64 {
			v := make([]byte, l)
			if _, err := f.ReadAt(v, ext+8); err == nil {
				h.backingFormat = string(v)
			}
		}
		ext += 8 + int64((l+7)&^7)
	}
	return h, nil
}

// probeFormat tells a qcow2 image from anything else (raw), for a
// backing file whose format its image does not record.
func probeFormat(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var magic [4]byte
	if n, _ := io.ReadFull(f, magic[:]); n == 4 && string(magic[:]) == "QFI\xfb" {
		return "qcow2", nil
	}
	return "raw", nil
}
