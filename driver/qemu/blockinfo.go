package qemu

import (
	"context"
	"encoding/binary"
	"os"
	"syscall"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
)

// GetBlockInfo implements driver.Domains for file-backed disks: capacity
// is the guest-visible size (from the qcow2 header, or the file size for
// raw), allocation the bytes the file occupies, physical its size.
func (d *Driver) GetBlockInfo(ctx context.Context, ref libvirt.Domain, name string) (uint64, uint64, uint64, error) {
	dom, err := d.get(ref)
	if err != nil {
		return 0, 0, 0, err
	}
	def := dom.current()
	path, format := "", ""
	if def != nil && def.Devices != nil {
		for _, disk := range def.Devices.Disks {
			if disk.Source == nil || disk.Source.File == nil {
				continue
			}
			target := ""
			if disk.Target != nil {
				target = disk.Target.Dev
			}
			if name == target || name == disk.Source.File.File {
				path = disk.Source.File.File
				if disk.Driver != nil {
					format = disk.Driver.Type
				}
				break
			}
		}
	}
	if path == "" {
		return 0, 0, 0, compat.Errorf(libvirt.ErrInvalidArg, compat.FromQEMU, "invalid path %s not assigned to domain", name)
	}
	return imageLimits(path, format)
}

// imageLimits sizes a disk image as libvirt's qemuStorageLimitsRefresh:
// capacity is the guest-visible size (from the qcow2 header, or the file
// size for raw), allocation the bytes the file occupies, physical its size.
func imageLimits(path, format string) (capacity, allocation, physical uint64, err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, 0, 0, compat.Errorf(libvirt.ErrSystemError, compat.FromQEMU, "cannot stat file '%s': %v", path, err)
	}
	physical = uint64(fi.Size())
	allocation = physical
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		allocation = uint64(st.Blocks) * 512
	}
	capacity = physical
	if format == "qcow2" {
		if c, ok := qcow2VirtualSize(path); ok {
			capacity = c
		}
	}
	return capacity, allocation, physical, nil
}

// qcow2VirtualSize reads the guest-visible size from a qcow2 header
// (magic "QFI\xfb", size at offset 24, big-endian).
func qcow2VirtualSize(path string) (uint64, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	var hdr [32]byte
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		return 0, false
	}
	if string(hdr[:4]) != "QFI\xfb" {
		return 0, false
	}
	return binary.BigEndian.Uint64(hdr[24:32]), true
}
