package domainxml

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
)

// QCOW2BackingFile returns the backing file name recorded in a qcow2
// image's header, "" when it has none. libvirt reads the chain of every
// disk at start (qemuDomainDetermineDiskChain); govirtd does not run
// chains, so it only needs to know whether there is one.
func QCOW2BackingFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	// Header: magic "QFI\xfb", version, backing_file_offset (u64),
	// backing_file_size (u32), all big-endian.
	var h [20]byte
	if _, err := io.ReadFull(f, h[:]); err != nil {
		return "", fmt.Errorf("%s: reading qcow2 header: %w", path, err)
	}
	if string(h[:4]) != "QFI\xfb" {
		return "", fmt.Errorf("%s: not a qcow2 image", path)
	}
	off := binary.BigEndian.Uint64(h[8:16])
	size := binary.BigEndian.Uint32(h[16:20])
	if off == 0 || size == 0 {
		return "", nil
	}
	if size > 1023 {
		return "", fmt.Errorf("%s: backing file name of %d bytes", path, size)
	}
	name := make([]byte, size)
	if _, err := f.ReadAt(name, int64(off)); err != nil {
		return "", fmt.Errorf("%s: reading backing file name: %w", path, err)
	}
	return string(name), nil
}
