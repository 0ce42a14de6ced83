package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	libvirt "github.com/digitalocean/go-libvirt"
	"golang.org/x/sys/unix"

	"github.com/govirtd/govirtd/compat"
)

// defaultVolMode is VIR_STORAGE_DEFAULT_VOL_PERM_MODE.
const defaultVolMode = 0o600

// buildJob is what a volume build needs, taken under the lock and used
// without it.
type buildJob struct {
	req      *volReq
	tmp      string // the file being built
	final    string // its name when done
	prealloc bool   // VIR_STORAGE_VOL_CREATE_PREALLOC_METADATA
	src      *volume
	srcPool  *pool // the source's pool, when it is another
}

// StorageVolCreateXML implements driver.Storage.
func (d *Driver) StorageVolCreateXML(ctx context.Context, ref libvirt.StoragePool, doc string, flags libvirt.StorageVolCreateFlags) (libvirt.StorageVol, error) {
	if flags&^(libvirt.StorageVolCreatePreallocMetadata|libvirt.StorageVolCreateValidate) != 0 {
		return libvirt.StorageVol{}, unsupportedFlags(uint32(flags&^(libvirt.StorageVolCreatePreallocMetadata|libvirt.StorageVolCreateValidate)), "storageVolCreateXML")
	}
	return d.createVol(ctx, ref, doc, nil, flags)
}

// StorageVolCreateXMLFrom implements driver.Storage.
func (d *Driver) StorageVolCreateXMLFrom(ctx context.Context, ref libvirt.StoragePool, doc string, clone libvirt.StorageVol, flags libvirt.StorageVolCreateFlags) (libvirt.StorageVol, error) {
	if flags&^(libvirt.StorageVolCreatePreallocMetadata|libvirt.StorageVolCreateReflink|libvirt.StorageVolCreateValidate) != 0 {
		return libvirt.StorageVol{}, unsupportedFlags(uint32(flags&^(libvirt.StorageVolCreatePreallocMetadata|libvirt.StorageVolCreateReflink|libvirt.StorageVolCreateValidate)), "storageVolCreateXMLFrom")
	}
	return d.createVol(ctx, ref, doc, &clone, flags)
}

// createVol creates a volume, from nothing or as a copy of clone. The
// file is built under a hidden name without the driver's lock (the name
// is reserved meanwhile, the pool cannot stop) and takes its name only
// when complete, so nobody sees a half-made volume.
func (d *Driver) createVol(ctx context.Context, ref libvirt.StoragePool, doc string, clone *libvirt.StorageVol, flags libvirt.StorageVolCreateFlags) (libvirt.StorageVol, error) {
	d.mu.Lock()
	p, job, err := d.prepareBuild(ref, doc, clone, flags)
	if err != nil {
		d.mu.Unlock()
		return libvirt.StorageVol{}, err
	}
	p.building[job.req.Name] = true
	p.jobs++
	if job.src != nil {
		job.src.inUse++
	}
	if job.srcPool != nil {
		job.srcPool.jobs++
	}
	d.mu.Unlock()

	err = d.build(ctx, job)
	if err == nil {
		err = renameNoReplace(job.tmp, job.final)
	}
	if err != nil {
		os.Remove(job.tmp)
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	delete(p.building, job.req.Name)
	p.jobs--
	if job.src != nil {
		job.src.inUse--
	}
	if job.srcPool != nil {
		job.srcPool.jobs--
	}
	if err != nil {
		return libvirt.StorageVol{}, err
	}
	v, ok := probe(job.final)
	if !ok {
		os.Remove(job.final)
		return libvirt.StorageVol{}, compat.Errorf(libvirt.ErrInternalError, compat.FromStorage, "cannot read new volume '%s'", job.final)
	}
	v.Name = job.req.Name
	p.vols[v.Name] = v
	p.def.Allocation += v.Allocation
	p.def.Available -= min(p.def.Available, v.Allocation)
	d.log.Info("storage volume created", "pool", p.def.Name, "vol", v.Name, "format", v.Format)
	return p.volRef(v), nil
}

// prepareBuild checks a create request as storageVolCreateXML(From) and
// the dir backend's createVol do. d.mu is held.
func (d *Driver) prepareBuild(ref libvirt.StoragePool, doc string, clone *libvirt.StorageVol, flags libvirt.StorageVolCreateFlags) (*pool, *buildJob, error) {
	p, err := d.get(ref)
	if err != nil {
		return nil, nil, err
	}
	var srcPool *pool
	if clone != nil && clone.Pool != p.def.Name {
		if srcPool, err = d.getByName(clone.Pool); err != nil {
			return nil, nil, err
		}
	}
	if !p.active {
		return nil, nil, notActive(p)
	}
	if srcPool != nil && !srcPool.active {
		return nil, nil, notActive(srcPool)
	}
	if err := backendFor(p.def); err != nil {
		return nil, nil, err
	}
	job := &buildJob{prealloc: flags&libvirt.StorageVolCreatePreallocMetadata != 0, srcPool: srcPool}
	if clone != nil {
		sp := p
		if srcPool != nil {
			sp = srcPool
		}
		src, ok := sp.vols[clone.Name]
		if !ok {
			return nil, nil, noVolName(clone.Name)
		}
		if job.src, err = d.reprobe(src); err != nil {
			return nil, nil, err
		}
		if job.src.Type != "file" {
			return nil, nil, compat.Errorf(libvirt.ErrOperationUnsupported, compat.FromStorage, "cannot clone volume '%s' of type %s", src.Name, src.Type)
		}
	}
	req, err := parseVol(doc, clone == nil)
	if err != nil {
		return nil, nil, err
	}
	job.req = req
	if _, ok := p.vols[req.Name]; ok || p.building[req.Name] {
		if clone != nil {
			return nil, nil, compat.Errorf(libvirt.ErrInternalError, compat.FromStorage, "storage volume name '%s' already in use.", req.Name)
		}
		return nil, nil, compat.Errorf(libvirt.ErrStorageVolExist, compat.FromStorage, "'%s'", req.Name)
	}
	if clone != nil {
		if req.Capacity < job.src.Capacity {
			req.Capacity = job.src.Capacity
		}
		if !req.HasAllocation {
			req.Allocation = req.Capacity
		}
	}
	if strings.Contains(req.Name, "/") {
		return nil, nil, compat.Errorf(libvirt.ErrOperationInvalid, compat.FromStorage, "volume name '%s' cannot contain '/'", req.Name)
	}
	if req.Name == "." || req.Name == ".." || strings.HasPrefix(req.Name, tmpPrefix) || strings.ContainsRune(req.Name, 0) {
		return nil, nil, compat.Errorf(libvirt.ErrOperationInvalid, compat.FromStorage, "invalid volume name '%s'", req.Name)
	}
	job.final = filepath.Join(p.def.Path, req.Name)
	if _, err := os.Lstat(job.final); err == nil {
		return nil, nil, compat.Errorf(libvirt.ErrOperationInvalid, compat.FromStorage, "volume target path '%s' already exists", job.final)
	}
	job.tmp = filepath.Join(p.def.Path, tmpPrefix+req.Name)
	switch req.Format {
	case "raw":
		if job.prealloc {
			return nil, nil, compat.Errorf(libvirt.ErrOperationUnsupported, compat.FromStorage, "metadata preallocation is not supported for raw volumes")
		}
		if req.BackingPath != "" {
			return nil, nil, compat.Errorf(libvirt.ErrNoSupport, compat.FromStorage, "backing storage not supported for raw volumes")
		}
	case "qcow2":
		if req.BackingPath != "" && clone != nil {
			return nil, nil, compat.Errorf(libvirt.ErrConfigUnsupported, compat.FromStorage, "a cloned volume cannot have a backing store")
		}
		if req.BackingPath != "" {
			if err := unix.Access(req.BackingPath, unix.R_OK); err != nil {
				return nil, nil, systemError(err, "inaccessible backing store volume %s", req.BackingPath)
			}
			if req.BackingFormat == "" {
				if bv, ok := probe(req.BackingPath); ok && bv.Type == "file" {
					req.BackingFormat = bv.Format
				} else {
					req.BackingFormat = "raw"
				}
			}
		}
	default:
		if !otherImageFormats[req.Format] {
			return nil, nil, compat.Errorf(libvirt.ErrConfigUnsupported, compat.FromStorage,
				"volume format '%s' is not supported by govirtd (raw, qcow2, qcow, qed, vmdk, vpc and vdi are)", req.Format)
		}
		if job.prealloc {
			return nil, nil, compat.Errorf(libvirt.ErrOperationUnsupported, compat.FromStorage, "metadata preallocation only available with qcow2")
		}
		if req.BackingPath != "" && (!backingFormats[req.Format] || clone != nil) {
			return nil, nil, compat.Errorf(libvirt.ErrNoSupport, compat.FromStorage, "backing storage not supported for %s volumes", req.Format)
		}
		if req.BackingPath != "" {
			if err := unix.Access(req.BackingPath, unix.R_OK); err != nil {
				return nil, nil, systemError(err, "inaccessible backing store volume %s", req.BackingPath)
			}
			if req.BackingFormat == "" {
				req.BackingFormat = "raw"
				if bv, ok := probe(req.BackingPath); ok && bv.Type == "file" {
					req.BackingFormat = bv.Format
				}
			}
		}
	}
	return p, job, nil
}

// build makes the volume's file at job.tmp.
func (d *Driver) build(ctx context.Context, job *buildJob) error {
	r := job.req
	var err error
	switch {
	case job.src != nil && job.src.Format == "raw" && r.Format == "raw":
		err = createRaw(job.tmp, r, job.src.Path)
	case job.src != nil:
		args := []string{"convert", "-f", job.src.Format, "-O", r.Format}
		if r.Format == "qcow2" {
			args = append(args, "-o", qcow2Opts(job.prealloc, r))
		}
		args = append(args, job.src.Path, job.tmp)
		if err = d.qemuImgRun(ctx, args...); err == nil && r.Capacity > job.src.Capacity {
			err = d.qemuImgRun(ctx, "resize", "-f", r.Format, job.tmp, fmt.Sprint((r.Capacity+511)/512*512))
		}
	case r.Format == "raw":
		err = createRaw(job.tmp, r, "")
	default:
		args := []string{"create", "-f", r.Format}
		if r.BackingPath != "" {
			args = append(args, "-b", r.BackingPath, "-F", r.BackingFormat)
		}
		if r.Format == "qcow2" {
			args = append(args, "-o", qcow2Opts(job.prealloc, r))
		}
		args = append(args, job.tmp)
		if r.Capacity > 0 || r.BackingPath == "" {
			// libvirt gives qemu-img the size in KiB, rounded up.
			args = append(args, fmt.Sprintf("%dK", (r.Capacity+1023)/1024))
		}
		err = d.qemuImgRun(ctx, args...)
	}
	if err != nil {
		return err
	}
	return setPerms(job.tmp, r.Perms)
}

// qcow2Opts are qemu-img's -o for a new qcow2: the <compat> asked for,
// else 0.10, the version libvirt 9.0's volumes have (the layout tools
// that read qcow2 headers, libvirt-tck among them, expect). With
// VIR_STORAGE_VOL_CREATE_PREALLOC_METADATA, libvirt preallocates the
// metadata of a volume whose allocation is below its capacity, and the
// whole file (falloc) of one that is fully allocated, sizes counted in
// KiB.
func qcow2Opts(prealloc bool, r *volReq) string {
	opts := "compat=0.10"
	if r.Compat != "" {
		opts = "compat=" + r.Compat
	}
	if !prealloc {
		return opts
	}
	if (r.Capacity+1023)/1024 > (r.Allocation+1023)/1024 {
		return opts + ",preallocation=metadata"
	}
	return opts + ",preallocation=falloc"
}

// setPerms gives a new volume its mode (0600 by default) and owner.
func setPerms(path string, p perms) error {
	mode := p.Mode
	if mode == -1 {
		mode = defaultVolMode
	}
	if err := os.Chmod(path, os.FileMode(mode)); err != nil {
		return systemError(err, "cannot set mode of '%s' to %04o", path, mode)
	}
	if p.Owner != -1 || p.Group != -1 {
		if err := os.Lchown(path, p.Owner, p.Group); err != nil {
			return systemError(err, "cannot chown '%s' to (%d, %d)", path, p.Owner, p.Group)
		}
	}
	return nil
}

// createRaw is storageBackendCreateRaw: a file of the capacity, its data
// copied from src if there is one (holes stay holes), allocated up to
// the allocation.
func createRaw(path string, r *volReq, src string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, defaultVolMode)
	if err != nil {
		return systemError(err, "cannot create path '%s'", path)
	}
	defer f.Close()
	if src != "" {
		if err := copySparse(f, src); err != nil {
			return err
		}
	}
	if err := f.Truncate(int64(r.Capacity)); err != nil {
		return systemError(err, "cannot extend file '%s'", path)
	}
	if alloc := min(r.Allocation, r.Capacity); alloc > 0 {
		err := unix.Fallocate(int(f.Fd()), 0, 0, int64(alloc))
		if errors.Is(err, unix.EOPNOTSUPP) {
			// As safezero: zeros written where fallocate is not there,
			// except over a copy's data.
			err = nil
			if src == "" {
				err = writeZeros(f, 0, int64(alloc))
			}
		}
		if err != nil {
			return systemError(err, "cannot fill file '%s'", path)
		}
	}
	if err := f.Sync(); err != nil {
		return systemError(err, "cannot sync data to file '%s'", path)
	}
	return nil
}

// copySparse copies src's data into dst at the same offsets, skipping
// its holes.
func copySparse(dst *os.File, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return systemError(err, "could not open input path '%s'", src)
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return systemError(err, "cannot stat '%s'", src)
	}
	size := st.Size()
	buf := make([]byte, 1<<20)
	for pos := int64(0); pos < size; {
		data, end, err := nextData(in, pos, size)
		if err != nil {
			return systemError(err, "failed reading from file '%s'", src)
		}
		if data >= size {
			break
		}
		for data < end {
			n, err := in.ReadAt(buf[:min(int64(len(buf)), end-data)], data)
			if n > 0 {
				if _, werr := dst.WriteAt(buf[:n], data); werr != nil {
					return systemError(werr, "failed writing to file '%s'", dst.Name())
				}
				data += int64(n)
			}
			if err != nil {
				if n == 0 {
					return systemError(err, "failed reading from file '%s'", src)
				}
			}
		}
		pos = end
	}
	return nil
}

// renameNoReplace gives a built volume its name, never over a file that
// appeared there meanwhile.
func renameNoReplace(from, to string) error {
	err := unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, to, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		if _, serr := os.Lstat(to); serr == nil {
			err = unix.EEXIST
		} else {
			err = os.Rename(from, to)
		}
	}
	if err != nil {
		return systemError(err, "cannot rename '%s' to '%s'", from, to)
	}
	return nil
}

// qemuImgRun runs qemu-img; its own words are the error.
func (d *Driver) qemuImgRun(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, d.qemuImg, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if msg == "" {
			msg = err.Error()
		}
		return compat.Errorf(libvirt.ErrInternalError, compat.FromNone, "Child process (%s %s) unexpected %s: %s",
			d.qemuImg, strings.Join(args, " "), exitText(err), msg)
	}
	return nil
}

func exitText(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return fmt.Sprintf("exit status %d", ee.ExitCode())
	}
	return err.Error()
}
