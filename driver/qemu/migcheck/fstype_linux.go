package migcheck

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	libvirt "github.com/digitalocean/go-libvirt"
	"golang.org/x/sys/unix"

	"github.com/govirtd/govirtd/compat"
)

// fsMagic names statfs f_type values: the shared and cluster file systems
// libvirt knows (src/util/virfile.c) and common local ones for logs.
var fsMagic = map[int64]string{
	0x6969:     "nfs",
	0x01161970: "gfs2",
	0x7461636f: "ocfs2",
	0x6B414653: "afs",
	0x517B:     "smb",
	0xFF534D42: "cifs",
	0x00C36400: "ceph",
	0x47504653: "gpfs",
	0x61636673: "acfs",
	0x65735546: "fuse",
	0xEF53:     "ext4",
	0x58465342: "xfs",
	0x9123683E: "btrfs",
	0x01021994: "tmpfs",
	0x794c7630: "overlay",
	0x2FC12FC1: "zfs",
}

// procMounts is read for FUSE mounts; a variable for tests.
var procMounts = "/proc/mounts"

// StatFSType is libvirt's probe (virFileIsSharedFSType): statfs the path,
// walking up to the nearest existing ancestor as libvirt does (the image
// may sit in a directory we cannot search on an NFS server, but the mount
// point can be stat'ed). A FUSE file system is named by the type of the
// longest /proc/mounts entry containing the canonical path, so that
// "fuse.glusterfs" and "fuse.quobyte" can be told apart.
func StatFSType(path string) (string, error) {
	var sb unix.Statfs_t
	dir := path
	err := unix.Statfs(dir, &sb)
	for err != nil {
		i := strings.LastIndexByte(dir, '/')
		if i < 0 {
			return "", compat.Errorf(libvirt.ErrSystemError, compat.FromNone,
				"Invalid relative path '%s': %s", path, unix.EINVAL.Error())
		}
		if i == 0 {
			if dir == "/" {
				break
			}
			dir = "/"
		} else {
			dir = dir[:i]
		}
		err = unix.Statfs(dir, &sb)
	}
	if err != nil {
		e := compat.Errorf(libvirt.ErrSystemError, compat.FromNone,
			"cannot determine filesystem for '%s': %s", path, err.Error())
		var errno unix.Errno
		if errors.As(err, &errno) {
			e.Int1 = int32(errno)
		}
		e.Err = err
		return "", e
	}
	magic := int64(sb.Type) & 0xffffffff
	name, ok := fsMagic[magic]
	if !ok {
		return fmt.Sprintf("0x%x", magic), nil
	}
	if name == "fuse" {
		return fuseType(path)
	}
	return name, nil
}

// fuseType is virFileIsSharedFsFUSE's lookup: the mount type of the
// longest mount point that is a path prefix of the canonical path.
func fuseType(path string) (string, error) {
	canon, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", compat.Errorf(libvirt.ErrSystemError, compat.FromNone,
			"unable to canonicalize %s: %s", path, err.Error())
	}
	f, err := os.Open(procMounts)
	if err != nil {
		return "", compat.Errorf(libvirt.ErrSystemError, compat.FromNone,
			"Unable to open %s: %s", procMounts, err.Error())
	}
	defer f.Close()
	best, bestLen := "fuse", 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 {
			continue
		}
		mnt := unescapeMount(fields[1])
		rest, ok := strings.CutPrefix(canon, mnt)
		if !ok || !(mnt == "/" || rest == "" || rest[0] == '/') {
			continue
		}
		if len(mnt) > bestLen {
			best, bestLen = fields[2], len(mnt)
		}
	}
	return best, nil
}

// unescapeMount undoes the octal escapes of /proc/mounts (\040 for space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%3o", &v); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
