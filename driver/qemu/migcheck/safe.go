// Package migcheck holds libvirt 9.0's checks that decide whether a QEMU
// domain may be migrated: the storage safety check
// (qemuMigrationSrcIsSafe in src/qemu/qemu_migration.c) and the guest ABI
// comparison of a user-supplied destination XML
// (virDomainDefCheckABIStabilityFlags in src/conf/domain_conf.c).
package migcheck

import (
	"slices"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/compat/migparams"
)

// Safety error texts (qemuMigrationSrcIsSafe, VIR_ERR_MIGRATE_UNSAFE from
// VIR_FROM_QEMU); the client prints them after "Unsafe migration: ".
const (
	msgNoSharedStorage = "Migration without shared storage is unsafe"
	msgCacheMode       = "Migration may lead to data corruption if disks use cache other than none or directsync"
)

// SafetyOptions adjusts Safe for tests and for other QEMU versions.
type SafetyOptions struct {
	// FSType names the file system holding path: a Linux type name
	// ("nfs", "ext4", ...) or a FUSE mount type ("fuse.glusterfs").
	// Nil means StatFSType, the statfs/proc-mounts probe libvirt uses.
	FSType func(path string) (string, error)
	// NoDropCache says QEMU lacks blockdev-add's file "drop-cache" option
	// (libvirt's QEMU_CAPS_MIGRATION_FILE_DROP_CACHE, probed from the QMP
	// schema; QEMU has it since 4.0). With it, QEMU drops the page cache at
	// switchover, so libvirt lets disks with any cache mode migrate. QEMU
	// 7.2 has it, hence the negative default.
	NoDropCache bool
	// MigrateDisks is the migrate_disks parameter: with NON_SHARED_* flags
	// these disks are copied by QEMU and need no shared storage.
	MigrateDisks []string
}

// sharedFS is virFileIsSharedFS's list in libvirt 9.0 (VIR_FILE_SHFS_*
// minus BeeGFS, which libvirt added after 9.0).
var sharedFS = map[string]bool{
	"nfs": true, "gfs2": true, "ocfs2": true, "afs": true, "smb": true,
	"cifs": true, "ceph": true, "gpfs": true, "acfs": true,
	"fuse.quobyte": true, "fuse.glusterfs": true,
}

// clusterFS is virFileIsClusterFS's list: coherent cluster file systems
// libvirt trusts with any cache mode.
var clusterFS = map[string]bool{
	"gfs2": true, "ocfs2": true, "ceph": true, "fuse.glusterfs": true,
}

// Safe is qemuMigrationSrcIsSafe for libvirt 9.0 with QEMU 7.2 and the
// host's file systems; see SafeWith.
func Safe(def *libvirtxml.Domain, flags migparams.Flags) error {
	return SafeWith(def, flags, SafetyOptions{})
}

// SafeWith decides whether migrating def is safe for its disks. Like
// qemuMigrationSrcBeginPhase it is skipped for VIR_MIGRATE_UNSAFE and for
// offline migration. Per disk, in definition order:
//   - no source (empty CD-ROM/floppy) or read-only (CD-ROMs always are):
//     safe;
//   - copied by QEMU (NON_SHARED_* and selected by migrate_disks, or all
//     writable unshared disks when migrate_disks is empty): safe;
//   - network disk: safe;
//   - file disk: on a cluster FS safe; on no shared FS
//     "Migration without shared storage is unsafe";
//   - NVMe disk: "Migration without shared storage is unsafe";
//   - then (file on a non-cluster shared FS, block, dir, volume, vhost):
//     shareable or cache none/directsync is safe, and so is any cache
//     when QEMU can drop caches; otherwise "Migration may lead to data
//     corruption if disks use cache other than none or directsync".
//
// The probe failing is reported as libvirt's virFileIsSharedFSType does.
// A type='volume' disk is not resolved to its pool's storage here and so
// is never judged "without shared storage".
func SafeWith(def *libvirtxml.Domain, flags migparams.Flags, opts SafetyOptions) error {
	if flags&(migparams.Unsafe|migparams.Offline) != 0 || def == nil || def.Devices == nil {
		return nil
	}
	fsType := opts.FSType
	if fsType == nil {
		fsType = StatFSType
	}
	storageMigration := flags&(migparams.NonSharedDisk|migparams.NonSharedInc) != 0
	for i := range def.Devices.Disks {
		disk := &def.Devices.Disks[i]
		if diskEmpty(disk) || diskReadOnly(disk) {
			continue
		}
		if storageMigration && copiedByQEMU(disk, opts.MigrateDisks) {
			continue
		}
		unsafe := false
		src := disk.Source
		switch {
		case src.File != nil:
			t, err := fsType(src.File.File)
			if err != nil {
				return err
			}
			if clusterFS[t] {
				continue
			}
			unsafe = !sharedFS[t]
		case src.Network != nil:
			continue
		case src.NVME != nil:
			unsafe = true
		}
		if unsafe {
			return compat.Errorf(libvirt.ErrMigrateUnsafe, compat.FromQEMU, msgNoSharedStorage)
		}
		if disk.Shareable != nil || cacheMode(disk) == "none" || cacheMode(disk) == "directsync" {
			continue
		}
		if !opts.NoDropCache {
			continue
		}
		return compat.Errorf(libvirt.ErrMigrateUnsafe, compat.FromQEMU, msgCacheMode)
	}
	return nil
}

func cacheMode(d *libvirtxml.DomainDisk) string {
	if d.Driver == nil {
		return ""
	}
	return d.Driver.Cache
}

// diskEmpty is virStorageSourceIsEmpty: no source at all, a local source
// without a path, or a network source without a protocol.
func diskEmpty(d *libvirtxml.DomainDisk) bool {
	s := d.Source
	switch {
	case s == nil:
		return true
	case s.File != nil:
		return s.File.File == ""
	case s.Block != nil:
		return s.Block.Dev == ""
	case s.Dir != nil:
		return s.Dir.Dir == ""
	case s.Network != nil:
		return s.Network.Protocol == ""
	case s.Volume != nil, s.NVME != nil, s.VHostUser != nil, s.VHostVDPA != nil:
		return false
	}
	return true
}

// diskReadOnly: libvirt's parser forces CD-ROMs read-only.
func diskReadOnly(d *libvirtxml.DomainDisk) bool {
	return d.ReadOnly != nil || d.Device == "cdrom"
}

// copiedByQEMU is qemuMigrationAnyCopyDisk.
func copiedByQEMU(d *libvirtxml.DomainDisk, migrateDisks []string) bool {
	if len(migrateDisks) > 0 {
		return d.Target != nil && slices.Contains(migrateDisks, d.Target.Dev)
	}
	return d.Shareable == nil && !diskReadOnly(d) && !diskEmpty(d)
}
