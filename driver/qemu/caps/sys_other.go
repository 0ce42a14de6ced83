//go:build !linux

package caps

import "runtime"

// unameMachine approximates `uname -m` from the Go architecture; only Linux
// hosts are supported for real, this just keeps the package buildable.
func unameMachine() string {
	switch runtime.GOARCH {
	case "amd64":
		return "x86_64"
	case "386":
		return "i686"
	case "arm64":
		return "aarch64"
	}
	return runtime.GOARCH
}

// kvmUsable is always false off Linux: KVM is a Linux interface.
func kvmUsable(string) bool { return false }
