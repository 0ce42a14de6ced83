//go:build !linux

package migcheck

// StatFSType has no probe outside Linux; like libvirt's non-Linux
// virFileIsSharedFSType it reports nothing shared.
func StatFSType(path string) (string, error) { return "", nil }
