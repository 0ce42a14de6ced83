//go:build linux

package caps

import (
	"os"
	"syscall"
)

// unameMachine returns the kernel's machine name, i.e. `uname -m`.
func unameMachine() string {
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		return ""
	}
	b := make([]byte, 0, len(u.Machine))
	for _, c := range u.Machine {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	return string(b)
}

// ioctl numbers from <linux/kvm.h>: _IO(KVMIO=0xAE, 0x00) and _IO(0xAE, 0x01).
const (
	kvmGetAPIVersion = 0xAE00
	kvmCreateVM      = 0xAE01
	kvmAPIVersion    = 12 // the only version Linux has ever shipped
)

// kvmUsable reports whether KVM acceleration really works. The device node
// can exist and open fine while the CPU lacks VMX/SVM, so beyond the API
// version we also create (and immediately drop) a VM, which is the first
// thing QEMU's accel=kvm does and fails exactly when QEMU would.
func kvmUsable(path string) bool {
	f, err := os.OpenFile(path, os.O_RDWR|syscall.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	fd := f.Fd()
	v, _, errno := syscall.Syscall(syscall.SYS_IOCTL, fd, kvmGetAPIVersion, 0)
	if errno != 0 || v != kvmAPIVersion {
		return false
	}
	vmfd, _, errno := syscall.Syscall(syscall.SYS_IOCTL, fd, kvmCreateVM, 0)
	if errno != 0 {
		return false
	}
	syscall.Close(int(vmfd))
	return true
}
