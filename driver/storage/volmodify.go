package storage

import (
	"context"
	"errors"
	"fmt"
	"os"

	libvirt "github.com/digitalocean/go-libvirt"
	"golang.org/x/sys/unix"

	"github.com/govirtd/govirtd/compat"
)

// wipeAlgLast is VIR_STORAGE_VOL_WIPE_ALG_LAST in libvirt 9.0.
const wipeAlgLast = 10

// StorageVolResize implements driver.Storage with storageVolResize's
// checks, then the dir backend's resize: truncate (or allocate) a raw
// file, qemu-img resize anything else.
func (d *Driver) StorageVolResize(ctx context.Context, ref libvirt.StorageVol, capacity uint64, flags libvirt.StorageVolResizeFlags) error {
	all := libvirt.StorageVolResizeAllocate | libvirt.StorageVolResizeDelta | libvirt.StorageVolResizeShrink
	if flags&^all != 0 {
		return unsupportedFlags(uint32(flags&^all), "storageVolResize")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	p, v, err := d.volFrom(ref)
	if err != nil {
		return err
	}
	if err := inUse(v); err != nil {
		return err
	}
	abs := capacity
	if flags&libvirt.StorageVolResizeDelta != 0 {
		if flags&libvirt.StorageVolResizeShrink != 0 {
			abs = v.Capacity - min(capacity, v.Capacity)
		} else {
			abs = v.Capacity + capacity
		}
		flags &^= libvirt.StorageVolResizeDelta
	}
	if abs < v.Allocation {
		return compat.Errorf(libvirt.ErrInvalidArg, compat.FromStorage, "can't shrink capacity below existing allocation")
	}
	if abs < v.Capacity && flags&libvirt.StorageVolResizeShrink == 0 {
		return compat.Errorf(libvirt.ErrInvalidArg, compat.FromStorage, "Can't shrink capacity below current capacity unless shrink flag explicitly specified")
	}
	var delta uint64
	if flags&libvirt.StorageVolResizeAllocate != 0 {
		delta = abs - v.Allocation
	}
	if delta > p.def.Available {
		return compat.Errorf(libvirt.ErrOperationFailed, compat.FromStorage, "Not enough space left in storage pool")
	}
	if v.Type != "file" {
		return compat.Errorf(libvirt.ErrNoSupport, compat.FromStorage, "storage pool does not support changing of volume capacity")
	}
	prealloc := flags&libvirt.StorageVolResizeAllocate != 0
	if v.Format == "raw" {
		if err := resizeRaw(v.Path, abs, prealloc); err != nil {
			return err
		}
	} else {
		if prealloc {
			return compat.Errorf(libvirt.ErrOperationUnsupported, compat.FromStorage, "preallocate is only supported for raw type volume")
		}
		args := []string{"resize", "-f", v.Format}
		if abs < v.Capacity {
			args = append(args, "--shrink")
		}
		// qemu-img takes multiples of 512 only; libvirt rounds up.
		args = append(args, v.Path, fmt.Sprint((abs+511)/512*512))
		if err := d.qemuImgRun(ctx, args...); err != nil {
			return err
		}
	}
	old := v.Allocation
	if nv, err := d.reprobe(v); err == nil {
		p.def.Allocation = p.def.Allocation - min(p.def.Allocation, old) + nv.Allocation
		p.def.Available = p.def.Available + old - min(p.def.Available+old, nv.Allocation)
	}
	return nil
}

// resizeRaw is virFileResize: a truncate, or with ALLOCATE blocks for the
// whole new size.
func resizeRaw(path string, capacity uint64, prealloc bool) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return systemError(err, "Unable to open '%s'", path)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return systemError(err, "Unable to stat '%s'", path)
	}
	if !prealloc || int64(capacity) < st.Size() {
		if err := f.Truncate(int64(capacity)); err != nil {
			return systemError(err, "Failed to truncate file '%s'", path)
		}
	}
	if prealloc && capacity > 0 {
		err := unix.Fallocate(int(f.Fd()), 0, 0, int64(capacity))
		if errors.Is(err, unix.EOPNOTSUPP) && int64(capacity) > st.Size() {
			err = writeZeros(f, st.Size(), int64(capacity)-st.Size())
		}
		if err != nil {
			return systemError(err, "Failed to pre-allocate space for file '%s'", path)
		}
	}
	if err := f.Sync(); err != nil {
		return systemError(err, "unable to sync '%s'", path)
	}
	return nil
}

// StorageVolWipe implements driver.Storage: virStorageVolWipePattern.
// Only the zero algorithm is here; the others need the scrub program,
// which govirtd does not run.
func (d *Driver) StorageVolWipe(ctx context.Context, ref libvirt.StorageVol, algorithm libvirt.StorageVolWipeAlgorithm, flags uint32) error {
	if flags != 0 {
		return unsupportedFlags(flags, "storageVolWipePattern")
	}
	if algorithm < 0 || algorithm >= wipeAlgLast {
		return compat.Errorf(libvirt.ErrInvalidArg, compat.FromStorage, "wiping algorithm %d not supported", algorithm)
	}
	d.mu.Lock()
	p, v, err := d.volFrom(ref)
	if err == nil {
		err = inUse(v)
	}
	if err == nil && v.Type != "file" {
		err = compat.Errorf(libvirt.ErrNoSupport, compat.FromStorage, "storage pool doesn't support volume wiping")
	}
	if err == nil {
		switch algorithm {
		case libvirt.StorageVolWipeAlgZero:
		case libvirt.StorageVolWipeAlgTrim:
			err = compat.Errorf(libvirt.ErrArgumentUnsupported, compat.FromStorage, "'trim' algorithm not supported")
		default:
			// libvirt runs scrub for these; govirtd has no scrub to run,
			// and says so as libvirt's virCommand does when it finds none.
			err = &compat.Error{Code: libvirt.ErrSystemError, Domain: compat.FromNone, Int1: int32(unix.ENOENT),
				Detail: "Cannot find 'scrub' in path: No such file or directory"}
		}
	}
	if err != nil {
		d.mu.Unlock()
		return err
	}
	p.jobs++
	v.inUse++
	path, alloc := v.Path, v.Allocation
	d.mu.Unlock()

	err = wipeZero(path, alloc)

	d.mu.Lock()
	defer d.mu.Unlock()
	p.jobs--
	v.inUse--
	if err != nil {
		return err
	}
	if cur, ok := p.vols[v.Name]; ok {
		_, err = d.reprobe(cur)
	}
	return err
}

// wipeZero is storageBackendVolWipeLocalFile with the zero algorithm: a
// sparse file is truncated to nothing and back to its size; any other
// has its allocated bytes overwritten with zeros.
func wipeZero(path string, alloc uint64) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return systemError(err, "Failed to open storage volume with path '%s'", path)
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return systemError(err, "Failed to stat storage volume with path '%s'", path)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFREG && st.Blocks < st.Size/512 {
		if err := f.Truncate(0); err != nil {
			return systemError(err, "Failed to truncate volume with path '%s' to 0 bytes", path)
		}
		if err := f.Truncate(st.Size); err != nil {
			return systemError(err, "Failed to truncate volume with path '%s' to %d bytes", path, st.Size)
		}
	} else if err := writeZeros(f, 0, min(int64(alloc), st.Size)); err != nil {
		return systemError(err, "Failed to write to storage volume with path '%s'", path)
	}
	if err := f.Sync(); err != nil {
		return systemError(err, "cannot sync data to volume with path '%s'", path)
	}
	return nil
}
