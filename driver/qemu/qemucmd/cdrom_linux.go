package qemucmd

import (
	"os"
	"syscall"
)

// hostIsCDROM mirrors virFileIsCDROM: libvirt asks the kernel whether a
// block device is an optical drive (CDROM_DRIVE_STATUS) and only then
// uses QEMU's host_cdrom driver, which adds tray and media-change handling.
func hostIsCDROM(path string) bool {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	const cdromDriveStatus = 0x5326 // linux/cdrom.h
	const cdslCurrent = 0x7fffffff
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), cdromDriveStatus, cdslCurrent)
	return errno == 0
}
