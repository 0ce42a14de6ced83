// Package storagecopy moves a guest's local disks with its memory during a
// live migration (virsh migrate --copy-storage-all/--copy-storage-inc),
// the way libvirt 9.0 does it, so that either side may be a libvirtd:
//
//   - the destination creates the images that are missing (Precreate),
//     starts its QEMU waiting for the migration, and exports each disk's
//     format node over QEMU's NBD server under libvirt's drive alias
//     ("drive-virtio-disk0"), writable (Serve); its port travels back in
//     the Prepare cookie's <nbd port='…'/>;
//   - the source attaches each export as a block node
//     ("migration-vda-storage") and mirrors its disk into it (Mirror),
//     waits until every mirror is in sync (WaitReady), migrates the
//     memory, and once QEMU reports the memory sent (the guest paused, so
//     nothing writes any more) completes the mirrors without switching to
//     them (Complete): the destination's copy is now exact;
//   - the destination stops its NBD server before resuming (StopServing).
//
// A failure before the end force-cancels the mirrors (Abort): the source
// keeps running on its own, untouched disks, and the destination removes
// only the images it created.
package storagecopy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver/qemu/qemucmd"
	"github.com/govirtd/govirtd/driver/qemu/qmp"
)

// Disk is one disk a storage migration copies.
type Disk struct {
	// Target is the guest's name for it ("vda").
	Target string
	// Export is libvirt's drive alias ("drive-virtio-disk0"): the NBD
	// export's name on the destination and the mirror job's id on the
	// source.
	Export string
	// Node is the disk's format node in QEMU, the one mirrored and
	// exported.
	Node string
	// Path and Format are the image's.
	Path, Format string
}

// Monitor is the part of the QMP client storage migration uses.
type Monitor interface {
	NBDServerStart(ctx context.Context, addr qmp.NBDAddress, tlsCreds string) error
	NBDServerStop(ctx context.Context) error
	BlockExportAddNBD(ctx context.Context, id, node, name string, writable bool) error
	BlockdevAddNBD(ctx context.Context, node string, addr qmp.NBDAddress, export, tlsCreds, tlsHostname string) error
	BlockdevDel(ctx context.Context, node string) error
	BlockdevMirror(ctx context.Context, m qmp.Mirror) error
	QueryBlockJobs(ctx context.Context) ([]qmp.BlockJob, error)
	BlockJobCancel(ctx context.Context, id string, force bool) error
	JobDismiss(ctx context.Context, id string) error
	QueryNamedBlockNodes(ctx context.Context) ([]qmp.BlockNode, error)
}

var _ Monitor = (*qmp.Monitor)(nil)

// Select returns the disks of a running domain (def is its live
// definition, with aliases) that a storage migration copies, as libvirt's
// qemuMigrationAnyCopyDisk chooses them: the disks named in migrateDisks
// (--migrate-disks), or when there is no list every disk that is
// writable, not shared and has media.
func Select(def *libvirtxml.Domain, migrateDisks []string) ([]Disk, error) {
	if def.Devices == nil {
		return nil, nil
	}
	for _, t := range migrateDisks {
		if !slices.ContainsFunc(def.Devices.Disks, func(d libvirtxml.DomainDisk) bool { return d.Target != nil && d.Target.Dev == t }) {
			return nil, compat.Errorf(libvirt.ErrInvalidArg, compat.FromQEMU, "disk target %s not found", t)
		}
	}
	var out []Disk
	for i := range def.Devices.Disks {
		disk := &def.Devices.Disks[i]
		if disk.Target == nil {
			continue
		}
		path := sourcePath(disk)
		copyable := disk.ReadOnly == nil && disk.Shareable == nil && path != "" && disk.Device != "cdrom"
		if len(migrateDisks) > 0 {
			if !slices.Contains(migrateDisks, disk.Target.Dev) {
				continue
			}
			if disk.ReadOnly != nil || path == "" || disk.Device == "cdrom" {
				return nil, compat.Errorf(libvirt.ErrOperationUnsupported, compat.FromQEMU, "Cannot migrate empty or read-only disk %s", disk.Target.Dev)
			}
		} else if !copyable {
			continue
		}
		if disk.Alias == nil || disk.Alias.Name == "" {
			return nil, fmt.Errorf("disk %s has no alias: not a running domain's definition", disk.Target.Dev)
		}
		format := diskFormat(disk)
		out = append(out, Disk{
			Target: disk.Target.Dev,
			Export: "drive-" + disk.Alias.Name,
			Node:   qemucmd.DiskFormatNode(def, i),
			Path:   path,
			Format: format,
		})
	}
	return out, nil
}

// Images returns the disks of def named by targets, with their image path
// and format: what Precreate needs before QEMU runs (so before the disks
// have aliases and nodes).
func Images(def *libvirtxml.Domain, targets []string) ([]Disk, error) {
	var out []Disk
	for _, t := range targets {
		var disk *libvirtxml.DomainDisk
		if def.Devices != nil {
			for i := range def.Devices.Disks {
				if d := &def.Devices.Disks[i]; d.Target != nil && d.Target.Dev == t {
					disk = d
				}
			}
		}
		if disk == nil {
			return nil, compat.Errorf(libvirt.ErrInternalError, compat.FromQEMU, "unable to find disk by target: %s", t)
		}
		path := sourcePath(disk)
		if path == "" {
			continue
		}
		format := diskFormat(disk)
		out = append(out, Disk{Target: t, Path: path, Format: format})
	}
	return out, nil
}

// Targets lists the disks' target names.
func Targets(disks []Disk) []string {
	out := make([]string, len(disks))
	for i, d := range disks {
		out[i] = d.Target
	}
	return out
}

// diskFormat is the disk image's format (raw unless the driver says).
func diskFormat(disk *libvirtxml.DomainDisk) string {
	if disk.Driver != nil && disk.Driver.Type != "" {
		return disk.Driver.Type
	}
	return "raw"
}

func sourcePath(disk *libvirtxml.DomainDisk) string {
	if s := disk.Source; s != nil {
		switch {
		case s.File != nil:
			return s.File.File
		case s.Block != nil:
			return s.Block.Dev
		}
	}
	return ""
}

// Capacities returns each disk's virtual size in bytes, as QEMU reports
// it for the disk's format node: what the destination must create.
func Capacities(ctx context.Context, mon Monitor, disks []Disk) (map[string]uint64, error) {
	nodes, err := mon.QueryNamedBlockNodes(ctx)
	if err != nil {
		return nil, fmt.Errorf("query block nodes: %w", err)
	}
	out := map[string]uint64{}
	for _, d := range disks {
		i := slices.IndexFunc(nodes, func(n qmp.BlockNode) bool { return n.NodeName == d.Node })
		if i < 0 {
			return nil, compat.Errorf(libvirt.ErrInternalError, compat.FromQEMU, "unable to find block node '%s' of disk %s", d.Node, d.Target)
		}
		out[d.Target] = uint64(nodes[i].Image.VirtualSize)
	}
	return out, nil
}

// Precreate makes the images of the disks a storage migration brings
// that do not exist yet on this host, with the definition's format and
// the capacity the source announced, and returns the paths it created: a
// failed migration removes those, and only those. libvirt precreates only
// storage-pool volumes; govirtd does it for plain image files too.
// Incremental copies need the image (with its backing chain) in place, as
// in libvirt.
func Precreate(ctx context.Context, disks []Disk, capacity map[string]uint64, incremental bool) ([]string, error) {
	var created []string
	for _, d := range disks {
		if _, err := os.Stat(d.Path); err == nil {
			continue
		} else if !errors.Is(err, os.ErrNotExist) {
			RemoveCreated(created)
			return nil, compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "cannot check disk %s image '%s': %v", d.Target, d.Path, err)
		}
		if incremental {
			RemoveCreated(created)
			return nil, compat.Errorf(libvirt.ErrOperationUnsupported, compat.FromQEMU,
				"pre-creation of storage target '%s' for incremental storage migration of disk '%s' is not supported", d.Path, d.Target)
		}
		size, ok := capacity[d.Target]
		if !ok {
			RemoveCreated(created)
			return nil, compat.Errorf(libvirt.ErrInternalError, compat.FromQEMU, "no capacity for disk %s in the migration cookie", d.Target)
		}
		out, err := exec.CommandContext(ctx, "qemu-img", "create", "-q", "-f", d.Format, d.Path, strconv.FormatUint(size, 10)).CombinedOutput()
		if err != nil {
			RemoveCreated(created)
			return nil, compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "cannot create image '%s' for disk %s: %v: %s", d.Path, d.Target, err, strings.TrimSpace(string(out)))
		}
		created = append(created, d.Path)
	}
	return created, nil
}

// RemoveCreated removes images Precreate made.
func RemoveCreated(paths []string) {
	for _, p := range paths {
		os.Remove(p)
	}
}

// Serve starts QEMU's NBD server on addr (in TLS with the credentials
// object tlsCreds unless it is "") and exports every disk, writable,
// under its drive alias (qemuMigrationDstStartNBDServer).
func Serve(ctx context.Context, mon Monitor, addr qmp.NBDAddress, tlsCreds string, disks []Disk) error {
	if err := mon.NBDServerStart(ctx, addr, tlsCreds); err != nil {
		return fmt.Errorf("start NBD server on %+v: %w", addr, err)
	}
	for _, d := range disks {
		if err := mon.BlockExportAddNBD(ctx, "libvirt-nbd-"+d.Node, d.Node, d.Export, true); err != nil {
			mon.NBDServerStop(ctx)
			return fmt.Errorf("export disk %s over NBD: %w", d.Target, err)
		}
	}
	return nil
}

// StopServing stops the NBD server and its exports.
func StopServing(ctx context.Context, mon Monitor) error {
	return mon.NBDServerStop(ctx)
}

// MirrorOptions say where and how the source copies.
type MirrorOptions struct {
	// Addr is the destination's NBD server.
	Addr qmp.NBDAddress
	// Speed limits each mirror, in bytes per second; 0 is unlimited.
	Speed int64
	// Shallow copies only the top image (--copy-storage-inc).
	Shallow bool
	// SyncWrites makes guest writes wait until they are mirrored
	// (--copy-storage-synchronous-writes).
	SyncWrites bool
	// TLSCreds names the credentials object of a TLS connection to the
	// NBD server, whose certificate must name TLSHostname; "" is plain.
	TLSCreds, TLSHostname string
}

// targetNode is the source's block node for a disk's remote copy.
func targetNode(d Disk) string { return "migration-" + d.Target + "-storage" }

// Mirror attaches each disk's export on the destination and starts
// mirroring the disk into it (qemuMigrationSrcNBDStorageCopyBlockdev).
// When one fails, the mirrors already started are abandoned.
func Mirror(ctx context.Context, mon Monitor, disks []Disk, o MirrorOptions) error {
	sync := "full"
	if o.Shallow {
		sync = "top"
	}
	mode := ""
	if o.SyncWrites {
		mode = "write-blocking"
	}
	for i, d := range disks {
		if err := mon.BlockdevAddNBD(ctx, targetNode(d), o.Addr, d.Export, o.TLSCreds, o.TLSHostname); err != nil {
			Abort(ctx, mon, disks[:i])
			return compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "migration of disk %s failed: cannot connect to the destination's NBD export %s: %v", d.Target, d.Export, err)
		}
		err := mon.BlockdevMirror(ctx, qmp.Mirror{JobID: d.Export, Device: d.Node, Target: targetNode(d), Sync: sync, Speed: o.Speed, CopyMode: mode})
		if err != nil {
			mon.BlockdevDel(ctx, targetNode(d))
			Abort(ctx, mon, disks[:i])
			return compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "migration of disk %s failed: %v", d.Target, err)
		}
	}
	return nil
}

// Progress is the disks' copy progress in bytes, the "File" lines of
// virsh domjobinfo.
type Progress struct {
	Total, Processed, Remaining uint64
}

// jobsOf returns the mirror jobs of disks by job id, and the first failed
// one's error.
func jobsOf(ctx context.Context, mon Monitor, disks []Disk) (map[string]qmp.BlockJob, error) {
	jobs, err := mon.QueryBlockJobs(ctx)
	if err != nil {
		return nil, fmt.Errorf("query block jobs: %w", err)
	}
	out := map[string]qmp.BlockJob{}
	for _, j := range jobs {
		out[j.Device] = j
	}
	for _, d := range disks {
		j, ok := out[d.Export]
		if !ok {
			return out, compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "migration of disk %s failed: its mirror job is gone", d.Target)
		}
		if j.Error != "" {
			return out, compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "migration of disk %s failed: %s", d.Target, j.Error)
		}
		if j.Status == "concluded" || j.Status == "aborting" {
			return out, compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "migration of disk %s failed", d.Target)
		}
	}
	return out, nil
}

// Query reports the mirrors' progress.
func Query(ctx context.Context, mon Monitor, disks []Disk) (Progress, error) {
	jobs, err := jobsOf(ctx, mon, disks)
	p, _ := progressOf(jobs, disks)
	return p, err
}

// progressOf sums the disks' mirror jobs, and tells whether all are in
// sync.
func progressOf(jobs map[string]qmp.BlockJob, disks []Disk) (p Progress, ready bool) {
	ready = true
	for _, d := range disks {
		j := jobs[d.Export]
		ready = ready && j.Ready
		p.Total += uint64(j.Len)
		p.Processed += uint64(j.Offset)
	}
	p.Remaining = p.Total - min(p.Processed, p.Total)
	return p, ready
}

// WaitReady waits until every mirror is in sync with its disk, calling
// progress (when not nil) on every poll. It returns the first mirror's
// failure, or ctx's error.
func WaitReady(ctx context.Context, mon Monitor, disks []Disk, poll time.Duration, progress func(Progress)) error {
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		jobs, err := jobsOf(ctx, mon, disks)
		if err != nil {
			return err
		}
		p, ready := progressOf(jobs, disks)
		if progress != nil {
			progress(p)
		}
		if ready {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Complete ends the mirrors cleanly once the guest is paused for good:
// block-job-cancel without force on a ready mirror flushes what is left
// and leaves the destination an exact copy, while the source keeps its
// disks. Any mirror that failed fails the migration.
func Complete(ctx context.Context, mon Monitor, disks []Disk) error {
	return finish(ctx, mon, disks, false)
}

// Abort abandons the mirrors (force-cancel): the source keeps running on
// its disks; what reached the destination is thrown away with it.
func Abort(ctx context.Context, mon Monitor, disks []Disk) error {
	return finish(ctx, mon, disks, true)
}

func finish(ctx context.Context, mon Monitor, disks []Disk, force bool) error {
	var firstErr error
	keep := func(err error) {
		if firstErr == nil && err != nil {
			firstErr = err
		}
	}
	var jobs []Disk
	for _, d := range disks {
		if d.Export != "" {
			jobs = append(jobs, d)
		}
	}
	for _, d := range jobs {
		if err := mon.BlockJobCancel(ctx, d.Export, force); err != nil && !force {
			keep(compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "migration of disk %s failed: %v", d.Target, err))
		}
	}
	// Wait for the jobs to conclude (auto-dismiss is off, so a concluded
	// job and its error stay visible until dismissed).
	pending := jobs
	for len(pending) > 0 {
		jobs, err := mon.QueryBlockJobs(ctx)
		if err != nil {
			keep(fmt.Errorf("query block jobs: %w", err))
			break
		}
		var still []Disk
		for _, d := range pending {
			i := slices.IndexFunc(jobs, func(j qmp.BlockJob) bool { return j.Device == d.Export })
			switch {
			case i < 0:
				// Never started, or already gone.
			case jobs[i].Status == "concluded":
				if jobs[i].Error != "" && !force {
					keep(compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "migration of disk %s failed: %s", d.Target, jobs[i].Error))
				}
				mon.JobDismiss(ctx, d.Export)
			default:
				still = append(still, d)
			}
		}
		pending = still
		if len(pending) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			keep(ctx.Err())
			pending = nil
		case <-time.After(50 * time.Millisecond):
		}
	}
	for _, d := range disks {
		if d.Target != "" {
			mon.BlockdevDel(ctx, targetNode(d))
		}
	}
	return firstErr
}

// Leftovers returns the storage migration mirrors a previous daemon left
// in QEMU (it died during a migration): each disk with its job id and the
// node it mirrors into, so that Complete or Abort can end them.
func Leftovers(ctx context.Context, mon Monitor) ([]Disk, error) {
	jobs, err := mon.QueryBlockJobs(ctx)
	if err != nil {
		return nil, fmt.Errorf("query block jobs: %w", err)
	}
	nodes, err := mon.QueryNamedBlockNodes(ctx)
	if err != nil {
		return nil, fmt.Errorf("query block nodes: %w", err)
	}
	var targets []string
	for _, n := range nodes {
		if t, ok := strings.CutPrefix(n.NodeName, "migration-"); ok {
			if t, ok = strings.CutSuffix(t, "-storage"); ok {
				targets = append(targets, t)
			}
		}
	}
	var out []Disk
	for _, j := range jobs {
		if j.Type != "mirror" || !strings.HasPrefix(j.Device, "drive-") {
			continue
		}
		out = append(out, Disk{Export: j.Device})
	}
	// Jobs and nodes pair up by position only when there is one of each;
	// otherwise cancel every job and then delete every node.
	if len(out) == 1 && len(targets) == 1 {
		out[0].Target = targets[0]
		return out, nil
	}
	for _, t := range targets {
		out = append(out, Disk{Target: t})
	}
	return out, nil
}
