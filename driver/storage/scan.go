package storage

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// volume is one volume of a dir pool: a file (or subdirectory) of its
// target directory, as libvirt's virStorageVolDef after a refresh.
type volume struct {
	Name, Path string
	Type       string // "file" or "dir"
	Format     string // "raw", "qcow2", "iso", "dir"
	Capacity   uint64 // virtual size
	Allocation uint64 // st_blocks * 512
	Physical   uint64 // st_size
	Perms      perms
	Times      *[3]unix.Timespec // atime, mtime, ctime
	// qcow2 only.
	Compat      string
	ClusterSize uint64
	Features    []string // nil: no <features> element
	Backing     *backing
	// inUse counts streams and copies reading or writing the volume
	// without the driver's lock.
	inUse int
}

// backing is a qcow2 volume's backing file.
type backing struct {
	Path, Format string
	Perms        perms
	Times        *[3]unix.Timespec
}

// tmpPrefix names the files of volumes being created: they are not
// volumes, and a scan skips them.
const tmpPrefix = ".govirtd-building-"

// refreshLocked rescans the pool's directory, as libvirt's
// virStorageBackendRefreshLocal: every entry that can be probed is a
// volume, what cannot be read is skipped; the pool's figures come from
// statvfs and its permissions from the directory. d.mu is held.
func (d *Driver) refreshLocked(p *pool) error {
	dir := p.def.Path
	ents, err := os.ReadDir(dir)
	if err != nil {
		return systemError(err, "cannot open directory '%s'", dir)
	}
	vols := map[string]*volume{}
	for _, e := range ents {
		name := e.Name()
		// Control characters are skipped as libvirt does; so are names
		// that are not UTF-8, which no XML document or RPC string can
		// carry.
		if strings.HasPrefix(name, tmpPrefix) || !printable(name) {
			continue
		}
		v, ok := probe(filepath.Join(dir, name))
		if !ok {
			continue
		}
		v.Name = name
		vols[name] = v
	}
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return systemError(err, "cannot stat path '%s'", dir)
	}
	var sf unix.Statfs_t
	if err := unix.Statfs(dir, &sf); err != nil {
		return systemError(err, "cannot statvfs path '%s'", dir)
	}
	p.def.Capacity = uint64(sf.Frsize) * sf.Blocks
	p.def.Available = uint64(sf.Frsize) * sf.Bfree
	p.def.Allocation = p.def.Capacity - p.def.Available
	p.def.Perms = perms{Mode: int(st.Mode & 0o777), Owner: int(st.Uid), Group: int(st.Gid)}
	// Volumes a stream or a copy is using keep their object (and its
	// count).
	for name, old := range p.vols {
		if nv, ok := vols[name]; ok && old.inUse > 0 {
			nv.inUse = old.inUse
		}
	}
	p.vols = vols
	if p.building == nil {
		p.building = map[string]bool{}
	}
	return nil
}

// probe reads what a volume is from its file; ok is false for what is no
// volume (a dangling link, a device, a file that cannot be opened), which
// a refresh skips as libvirt does.
func probe(path string) (*volume, bool) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, false
	}
	v := &volume{Path: path, Type: "file", Format: "raw"}
	fillStat(v, &st)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		v.Type, v.Format = "dir", "dir"
		return v, true
	case unix.S_IFREG:
	default:
		return nil, false
	}
	v.Capacity = uint64(st.Size)
	buf := make([]byte, 64*1024)
	n, _ := f.ReadAt(buf, 0)
	buf = buf[:n]
	if q, ok := parseQcow2(buf, f); ok {
		v.Format = "qcow2"
		v.Capacity = q.size
		v.Compat = q.compat
		v.ClusterSize = q.clusterSize
		v.Features = q.features
		if q.backing != "" {
			bp := q.backing
			if !strings.HasPrefix(bp, "/") && !strings.Contains(bp, "://") {
				bp = filepath.Join(filepath.Dir(path), bp)
			}
			b := &backing{Path: bp, Format: q.backingFormat, Perms: noPerms}
			var bst unix.Stat_t
			if unix.Stat(bp, &bst) == nil {
				b.Perms = perms{Mode: int(bst.Mode & 0o777), Owner: int(bst.Uid), Group: int(bst.Gid)}
				b.Times = &[3]unix.Timespec{bst.Atim, bst.Mtim, bst.Ctim}
				if b.Format == "" {
					if bv, ok := probe(bp); ok {
						b.Format = bv.Format
					}
				}
			}
			if b.Format == "" {
				b.Format = "raw"
			}
			v.Backing = b
		}
	} else if f := sniffFormat(buf); f != "" {
		v.Format = f
		if size := imageVirtualSize(path, f); size > 0 {
			v.Capacity = size
		}
	} else if len(buf) >= 0x8001+5 && string(buf[0x8001:0x8006]) == "CD001" {
		v.Format = "iso"
	}
	return v, true
}

func fillStat(v *volume, st *unix.Stat_t) {
	v.Allocation = uint64(st.Blocks) * 512
	v.Physical = uint64(st.Size)
	v.Perms = perms{Mode: int(st.Mode & 0o777), Owner: int(st.Uid), Group: int(st.Gid)}
	v.Times = &[3]unix.Timespec{st.Atim, st.Mtim, st.Ctim}
}

// qcow2Info is what a qcow2 header says.
type qcow2Info struct {
	size, clusterSize      uint64
	compat                 string
	features               []string
	backing, backingFormat string
}

const qcow2BackingFormatExt = 0xE2792ACA

// parseQcow2 reads a qcow2 header (versions 2 and 3) from its first
// bytes; anything that does not add up is no qcow2, never an error.
func parseQcow2(buf []byte, f *os.File) (qcow2Info, bool) {
	var q qcow2Info
	if len(buf) < 72 || string(buf[:4]) != "QFI\xfb" {
		return q, false
	}
	be := binary.BigEndian
	version := be.Uint32(buf[4:])
	if version != 2 && version != 3 {
		return q, false
	}
	backOff, backLen := be.Uint64(buf[8:]), be.Uint32(buf[16:])
	bits := be.Uint32(buf[20:])
	if bits < 9 || bits > 21 {
		return q, false
	}
	q.clusterSize = 1 << bits
	q.size = be.Uint64(buf[24:])
	hdrLen := uint64(72)
	q.compat = "0.10"
	if version == 3 {
		if len(buf) < 104 {
			return q, false
		}
		q.compat = "1.1"
		q.features = []string{}
		if be.Uint64(buf[80:])&1 != 0 {
			q.features = append(q.features, "lazy_refcounts")
		}
		if be.Uint64(buf[72:])&(1<<4) != 0 {
			q.features = append(q.features, "extended_l2")
		}
		hdrLen = uint64(be.Uint32(buf[100:]))
	}
	// Header extensions: type, length, data padded to 8 bytes.
	for off := hdrLen; off+8 <= uint64(len(buf)); {
		typ, l := be.Uint32(buf[off:]), uint64(be.Uint32(buf[off+4:]))
		if typ == 0 || off+8+l > uint64(len(buf)) {
			break
		}
		if typ == qcow2BackingFormatExt {
			q.backingFormat = string(buf[off+8 : off+8+l])
		}
		off += 8 + (l+7)/8*8
	}
	if backOff != 0 && backLen > 0 && backLen <= 1023 {
		name := make([]byte, backLen)
		if backOff < 1<<62 {
			if n, _ := f.ReadAt(name, int64(backOff)); n == int(backLen) && printable(string(name)) {
				q.backing = string(name)
			}
		}
	}
	if q.backingFormat != "" && q.backingFormat != "raw" && q.backingFormat != "qcow2" {
		// A format libvirt knows that govirtd does not: shown as it is.
		q.backingFormat = sanitizeFormat(q.backingFormat)
	}
	return q, true
}

// sanitizeFormat keeps a format name from a file header printable.
func sanitizeFormat(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') }) >= 0 {
		return "raw"
	}
	return s
}

// printable reports whether s is UTF-8 without control characters.
func printable(s string) bool {
	return utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f }) < 0
}
