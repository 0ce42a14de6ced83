package domainxml

import (
	"libvirt.org/go/libvirtxml"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
)

// VolumeSource is where a storage pool volume's data is: what a disk of
// type='volume' runs on.
type VolumeSource struct {
	Path string
	Type string // "file" or "block"
}

// prepareVolume turns a disk of type='volume' into the file or block disk
// QEMU opens, as libvirt's virDomainDiskTranslateSourcePool does when the
// domain starts: the pool must be active and have the volume. The live
// definition records the path; the persistent one keeps pool and volume.
func prepareVolume(disk *libvirtxml.DomainDisk, rt Runtime) error {
	if disk.Source == nil || disk.Source.Volume == nil {
		return nil
	}
	v := disk.Source.Volume
	if rt.ResolveVolume == nil {
		return unsupported("disks of type 'volume' need the storage driver")
	}
	src, err := rt.ResolveVolume(v.Pool, v.Volume)
	if err != nil {
		return err
	}
	index := disk.Source.Index
	switch src.Type {
	case "file":
		disk.Source = &libvirtxml.DomainDiskSource{Index: index, File: &libvirtxml.DomainDiskSourceFile{File: src.Path}}
	case "block":
		disk.Source = &libvirtxml.DomainDiskSource{Index: index, Block: &libvirtxml.DomainDiskSourceBlock{Dev: src.Path}}
	default:
		return compat.Errorf(libvirt.ErrInternalError, compat.FromQEMU, "unexpected storage volume type '%s' for volume '%s' in pool '%s'", src.Type, v.Volume, v.Pool)
	}
	return nil
}

// checkVolumeSource is the parser's check of a type='volume' source.
func checkVolumeSource(disk *libvirtxml.DomainDisk) error {
	if disk.Source == nil || disk.Source.Volume == nil {
		return nil
	}
	if disk.Source.Volume.Pool == "" || disk.Source.Volume.Volume == "" {
		return compat.Errorf(libvirt.ErrXMLError, compat.FromDomain, "'pool' and 'volume' must be specified together for 'pool' type source")
	}
	return nil
}
