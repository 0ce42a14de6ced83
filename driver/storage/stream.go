package storage

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"

	libvirt "github.com/digitalocean/go-libvirt"
	"golang.org/x/sys/unix"

	"github.com/govirtd/govirtd/driver"
)

// Linux's lseek whences for sparse files.
const (
	seekData = 3
	seekHole = 4
)

// nextData finds the first data at or after pos, and where it ends:
// [data, end). data is size when only a hole is left. A file system
// without SEEK_DATA is all data.
func nextData(f *os.File, pos, size int64) (data, end int64, err error) {
	data, err = f.Seek(pos, seekData)
	if errors.Is(err, unix.ENXIO) {
		return size, size, nil
	}
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) {
		return pos, size, nil
	}
	if err != nil {
		return 0, 0, err
	}
	end, err = f.Seek(data, seekHole)
	if err != nil {
		return 0, 0, err
	}
	return data, min(end, size), nil
}

// StorageVolDownload implements driver.Storage.
func (d *Driver) StorageVolDownload(ctx context.Context, ref libvirt.StorageVol, offset, length uint64, flags libvirt.StorageVolDownloadFlags) (driver.VolumeReader, error) {
	if flags&^libvirt.StorageVolDownloadSparseStream != 0 {
		return nil, unsupportedFlags(uint32(flags&^libvirt.StorageVolDownloadSparseStream), "storageVolDownload")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	_, v, err := d.volFrom(ref)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(v.Path)
	if err != nil {
		return nil, systemError(err, "Unable to open stream for '%s'", v.Path)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, systemError(err, "Unable to access stream for '%s'", v.Path)
	}
	end := st.Size()
	if length > 0 && offset+length < uint64(end) {
		end = int64(offset + length)
	}
	return &volReader{f: f, pos: int64(offset), end: end, sparse: flags&libvirt.StorageVolDownloadSparseStream != 0}, nil
}

// volReader reads [pos, end) of a volume's file.
type volReader struct {
	f        *os.File
	pos, end int64
	sparse   bool
}

// ReadSegment implements driver.VolumeReader.
func (r *volReader) ReadSegment(buf []byte) (int, int64, error) {
	if r.pos >= r.end {
		return 0, 0, io.EOF
	}
	limit := r.end
	if r.sparse {
		data, dataEnd, err := nextData(r.f, r.pos, r.end)
		if err != nil {
			return 0, 0, systemError(err, "unable to seek in '%s'", r.f.Name())
		}
		if data > r.pos {
			hole := min(data, r.end) - r.pos
			r.pos += hole
			return 0, hole, nil
		}
		limit = dataEnd
	}
	want := min(int64(len(buf)), limit-r.pos)
	n, err := r.f.ReadAt(buf[:want], r.pos)
	r.pos += int64(n)
	if n > 0 {
		return n, 0, nil
	}
	if err == io.EOF || err == nil {
		// The file shrank under the stream: it ends here.
		r.end = r.pos
		return 0, 0, io.EOF
	}
	return 0, 0, systemError(err, "unable to read %s", r.f.Name())
}

// Close implements driver.VolumeReader.
func (r *volReader) Close() error { return r.f.Close() }

// StorageVolUpload implements driver.Storage.
func (d *Driver) StorageVolUpload(ctx context.Context, ref libvirt.StorageVol, offset, length uint64, flags libvirt.StorageVolUploadFlags) (driver.VolumeWriter, error) {
	if flags&^libvirt.StorageVolUploadSparseStream != 0 {
		return nil, unsupportedFlags(uint32(flags&^libvirt.StorageVolUploadSparseStream), "storageVolUpload")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	p, v, err := d.volFrom(ref)
	if err != nil {
		return nil, err
	}
	if err := inUse(v); err != nil {
		return nil, err
	}
	// The file must exist: no O_CREAT, and no truncation either.
	f, err := os.OpenFile(v.Path, os.O_WRONLY, 0)
	if err != nil {
		return nil, systemError(err, "Unable to open stream for '%s'", v.Path)
	}
	return &volWriter{d: d, pool: p.def.Name, f: f, pos: int64(offset), end: int64(offset + length), limited: length > 0,
		sparse: flags&libvirt.StorageVolUploadSparseStream != 0}, nil
}

// volWriter writes a volume's file from an upload stream.
type volWriter struct {
	d       *Driver
	pool    string
	f       *os.File
	pos     int64
	end     int64
	limited bool
	// sparse: the volume ends where the sparse upload ended, as with
	// libvirtd (a trailing hole sets the size, older data past it goes).
	sparse bool

	once sync.Once
}

func (w *volWriter) room(n int64) int64 {
	if !w.limited {
		return n
	}
	return min(n, w.end-w.pos)
}

// Write implements driver.VolumeWriter. Data past the upload's length is
// refused, as libvirt's stream does (ENOSPC).
func (w *volWriter) Write(b []byte) (int, error) {
	n := w.room(int64(len(b)))
	written, err := w.f.WriteAt(b[:n], w.pos)
	w.pos += int64(written)
	if err != nil {
		return written, systemError(err, "unable to write to '%s'", w.f.Name())
	}
	if n < int64(len(b)) {
		return written, systemError(unix.ENOSPC, "cannot write to stream")
	}
	return written, nil
}

// Hole implements driver.VolumeWriter: the range reads as zeros and has
// no blocks (punched where the file had data, a truncate past its end).
func (w *volWriter) Hole(n int64) error {
	if n < 0 || w.room(n) < n {
		return systemError(unix.ENOSPC, "cannot write to stream")
	}
	st, err := w.f.Stat()
	if err != nil {
		return systemError(err, "unable to stat '%s'", w.f.Name())
	}
	size := st.Size()
	if w.pos < size {
		l := min(n, size-w.pos)
		if err := unix.Fallocate(int(w.f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, w.pos, l); err != nil {
			// No hole punching here: zeros will do.
			if zerr := writeZeros(w.f, w.pos, l); zerr != nil {
				return systemError(zerr, "unable to write to '%s'", w.f.Name())
			}
		}
	}
	w.pos += n
	if w.pos > size {
		if err := w.f.Truncate(w.pos); err != nil {
			return systemError(err, "unable to truncate '%s'", w.f.Name())
		}
	}
	return nil
}

func writeZeros(f *os.File, off, n int64) error {
	zero := make([]byte, min(n, 1<<20))
	for n > 0 {
		c := min(n, int64(len(zero)))
		if _, err := f.WriteAt(zero[:c], off); err != nil {
			return err
		}
		off, n = off+c, n-c
	}
	return nil
}

// Close implements driver.VolumeWriter: the data is synced, then the
// pool refreshed, as libvirt's stream close callback does.
func (w *volWriter) Close() error {
	var err error
	w.once.Do(func() {
		if w.sparse {
			if terr := w.f.Truncate(w.pos); terr != nil {
				err = systemError(terr, "unable to truncate '%s'", w.f.Name())
			}
		}
		if serr := w.f.Sync(); serr != nil && err == nil {
			err = systemError(serr, "unable to sync '%s'", w.f.Name())
		}
		if cerr := w.f.Close(); cerr != nil && err == nil {
			err = systemError(cerr, "unable to close '%s'", w.f.Name())
		}
		w.d.refreshAfterStream(w.pool)
	})
	return err
}

// Abort implements driver.VolumeWriter.
func (w *volWriter) Abort() {
	w.once.Do(func() {
		w.f.Close()
		w.d.refreshAfterStream(w.pool)
	})
}

// refreshAfterStream is virStorageVolPoolRefreshThread: the pool is
// rescanned unless volumes are being built in it, and a refresh event
// sent.
func (d *Driver) refreshAfterStream(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p, ok := d.pools[name]
	if !ok || !p.active || p.jobs > 0 {
		return
	}
	if err := d.refreshLocked(p); err != nil {
		d.log.Debug("failed to refresh storage pool after upload", "pool", name, "err", err)
	}
	d.emitRefresh(p)
}
