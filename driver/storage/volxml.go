package storage

import (
	"fmt"
	"math"
	"strings"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
	"golang.org/x/sys/unix"
)

// volFormats are the volume formats libvirt's dir backend knows; govirtd
// creates raw and qcow2 only.
var volFormats = []string{"none", "raw", "dir", "bochs", "cloop", "dmg", "iso", "vpc", "vdi", "fat",
	"vhd", "ploop", "cow", "qcow", "qcow2", "qed", "vmdk"}

// volReq is a parsed <volume> for creating one, as libvirt's
// virStorageVolDefParse.
type volReq struct {
	Name          string
	Capacity      uint64
	HasCapacity   bool
	Allocation    uint64
	HasAllocation bool
	Format        string
	Perms         perms
	BackingPath   string
	BackingFormat string
	// Compat is a qcow2's <compat> (qemu-img's compat option).
	Compat string
}

// parseVol reads volume XML; needCapacity is false for a clone (whose
// capacity defaults to its source's) and for a volume with a backing
// store.
func parseVol(doc string, needCapacity bool) (*volReq, error) {
	if err := wellFormed(doc, "volume", "(storage_volume_definition)"); err != nil {
		return nil, err
	}
	var x libvirtxml.StorageVolume
	if err := x.Unmarshal(doc); err != nil {
		return nil, xmlErr("%v", err)
	}
	if x.Name == "" {
		return nil, xmlErr("missing volume name element")
	}
	if x.Type != "" {
		switch x.Type {
		case "file", "block", "dir", "network", "netdir", "ploop":
		default:
			return nil, compat.Errorf(libvirt.ErrConfigUnsupported, compat.FromStorage, "unknown volume type '%s'", x.Type)
		}
	}
	r := &volReq{Name: x.Name, Format: "raw", Perms: noPerms}
	if x.BackingStore != nil && x.BackingStore.Path != "" {
		r.BackingPath = x.BackingStore.Path
		if x.BackingStore.Format != nil {
			if !knownFormat(x.BackingStore.Format.Type) {
				return nil, compat.Errorf(libvirt.ErrConfigUnsupported, compat.FromStorage, "unknown volume format type %s", x.BackingStore.Format.Type)
			}
			r.BackingFormat = x.BackingStore.Format.Type
		}
	}
	if x.Capacity != nil {
		v, err := scale(x.Capacity.Value, x.Capacity.Unit)
		if err != nil {
			return nil, err
		}
		r.Capacity, r.HasCapacity = v, true
	} else if needCapacity && r.BackingPath == "" {
		return nil, xmlErr("missing capacity element")
	}
	if x.Allocation != nil {
		v, err := scale(x.Allocation.Value, x.Allocation.Unit)
		if err != nil {
			return nil, err
		}
		r.Allocation, r.HasAllocation = v, true
	} else {
		// libvirt: an allocation not given is the capacity (a fully
		// allocated volume).
		r.Allocation = r.Capacity
	}
	if x.Target != nil {
		if x.Target.Format != nil && x.Target.Format.Type != "" {
			if !knownFormat(x.Target.Format.Type) {
				return nil, compat.Errorf(libvirt.ErrConfigUnsupported, compat.FromStorage, "unknown volume format type %s", x.Target.Format.Type)
			}
			r.Format = x.Target.Format.Type
		}
		if x.Target.Permissions != nil {
			p, err := parsePerms(x.Target.Permissions.Mode, x.Target.Permissions.Owner, x.Target.Permissions.Group)
			if err != nil {
				return nil, err
			}
			r.Perms = p
		}
		switch x.Target.Compat {
		case "", "0.10", "1.1":
			r.Compat = x.Target.Compat
		default:
			return nil, xmlErr("forbidden characters in 'compat' attribute")
		}
		if x.Target.Encryption != nil {
			return nil, compat.Errorf(libvirt.ErrConfigUnsupported, compat.FromStorage, "volume encryption is not supported by govirtd")
		}
	}
	if r.Format == "none" {
		r.Format = "raw"
	}
	return r, nil
}

func knownFormat(f string) bool {
	for _, k := range volFormats {
		if k == f {
			return true
		}
	}
	return false
}

// scale is virScaleInteger with libvirt's storage units: bytes by
// default, k/KiB and KB (1024 and 1000) up to E/EiB and EB, at most
// LLONG_MAX bytes (the largest file size).
func scale(v uint64, unit string) (uint64, error) {
	mult := uint64(1)
	if unit != "" {
		u := strings.ToLower(unit)
		base := uint64(1024)
		switch {
		case u == "b" || u == "byte" || u == "bytes":
		case len(u) == 1 || len(u) == 3 && u[1:] == "ib" || len(u) == 2 && u[1] == 'b':
			if len(u) == 2 {
				base = 1000
			}
			pow := strings.IndexByte("kmgtpe", u[0]) + 1
			if pow == 0 {
				return 0, compat.Errorf(libvirt.ErrInvalidArg, compat.FromStorage, "unknown suffix '%s'", unit)
			}
			for i := 0; i < pow; i++ {
				mult *= base
			}
		default:
			return 0, compat.Errorf(libvirt.ErrInvalidArg, compat.FromStorage, "unknown suffix '%s'", unit)
		}
	}
	if v > math.MaxInt64/mult {
		return 0, compat.Errorf(libvirt.ErrOverflow, compat.FromStorage, "value too large: %d%s", v, unit)
	}
	return v * mult, nil
}

// formatVol writes the volume as virStorageVolDefFormat does for a file
// in a dir pool.
func (v *volume) format() string {
	var b strings.Builder
	fmt.Fprintf(&b, "<volume type='%s'>\n", v.Type)
	fmt.Fprintf(&b, "  <name>%s</name>\n", escape(v.Name))
	fmt.Fprintf(&b, "  <key>%s</key>\n", escape(v.Path))
	b.WriteString("  <source>\n  </source>\n")
	fmt.Fprintf(&b, "  <capacity unit='bytes'>%d</capacity>\n", v.Capacity)
	fmt.Fprintf(&b, "  <allocation unit='bytes'>%d</allocation>\n", v.Allocation)
	if v.Physical != 0 {
		fmt.Fprintf(&b, "  <physical unit='bytes'>%d</physical>\n", v.Physical)
	}
	b.WriteString("  <target>\n")
	fmt.Fprintf(&b, "    <path>%s</path>\n", escape(v.Path))
	fmt.Fprintf(&b, "    <format type='%s'/>\n", v.Format)
	writePerms(&b, v.Perms, "    ")
	writeTimes(&b, v.Times)
	if v.Compat != "" {
		fmt.Fprintf(&b, "    <compat>%s</compat>\n", v.Compat)
	}
	if v.ClusterSize != 0 {
		fmt.Fprintf(&b, "    <clusterSize unit='B'>%d</clusterSize>\n", v.ClusterSize)
	}
	if v.Features != nil {
		if len(v.Features) == 0 {
			b.WriteString("    <features/>\n")
		} else {
			b.WriteString("    <features>\n")
			for _, f := range v.Features {
				fmt.Fprintf(&b, "      <%s/>\n", f)
			}
			b.WriteString("    </features>\n")
		}
	}
	b.WriteString("  </target>\n")
	if bk := v.Backing; bk != nil {
		b.WriteString("  <backingStore>\n")
		fmt.Fprintf(&b, "    <path>%s</path>\n", escape(bk.Path))
		fmt.Fprintf(&b, "    <format type='%s'/>\n", bk.Format)
		writePerms(&b, bk.Perms, "    ")
		writeTimes(&b, bk.Times)
		b.WriteString("  </backingStore>\n")
	}
	b.WriteString("</volume>\n")
	return b.String()
}

// writeTimes is virStorageVolTimestampFormat: seconds, and nanoseconds
// when there are any.
func writeTimes(b *strings.Builder, t *[3]unix.Timespec) {
	if t == nil {
		return
	}
	b.WriteString("    <timestamps>\n")
	for i, name := range []string{"atime", "mtime", "ctime"} {
		fmt.Fprintf(b, "      <%s>%d", name, t[i].Sec)
		if t[i].Nsec != 0 {
			fmt.Fprintf(b, ".%09d", t[i].Nsec)
		}
		fmt.Fprintf(b, "</%s>\n", name)
	}
	b.WriteString("    </timestamps>\n")
}
