package migcheck

import (
	"os"
	"path/filepath"
	"testing"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
)

func TestStatFSType(t *testing.T) {
	dir := t.TempDir()
	fs, err := StatFSType(filepath.Join(dir, "missing", "disk.img"))
	if err != nil || fs == "" {
		t.Fatalf("StatFSType = %q, %v", fs, err)
	}
	if sharedFS[fs] {
		t.Logf("temp dir is on shared fs %s", fs)
	}
	if _, err := StatFSType("relative"); compat.As(err).Code != libvirt.ErrSystemError {
		t.Errorf("relative path: %v", err)
	}
}

func TestFuseType(t *testing.T) {
	dir := t.TempDir()
	mounts := filepath.Join(dir, "mounts")
	data := "rootfs / ext4 rw 0 0\n" +
		"gv0 " + dir + " fuse.glusterfs rw 0 0\n" +
		"x " + dir + "/sub\\040dir fuse.sshfs rw 0 0\n"
	if err := os.WriteFile(mounts, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub dir"), 0o700); err != nil {
		t.Fatal(err)
	}
	old := procMounts
	procMounts = mounts
	defer func() { procMounts = old }()
	canon, _ := filepath.EvalSymlinks(dir)
	if canon != dir {
		t.Skip("temp dir path is not canonical")
	}
	if got, err := fuseType(mounts); got != "fuse.glusterfs" || err != nil {
		t.Errorf("fuseType = %q, %v", got, err)
	}
	if got, err := fuseType(filepath.Join(dir, "sub dir")); got != "fuse.sshfs" || err != nil {
		t.Errorf("fuseType(sub dir) = %q, %v", got, err)
	}
}
