package storage

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"os/exec"
	"time"
)

// Image formats other than raw and qcow2 that qemu-img creates and libvirt's
// dir backend knows: found by their magic when a pool is scanned, their
// virtual size read with qemu-img info, created with qemu-img create and
// converted to with qemu-img convert, without options (preallocation and
// compat are qcow2's).
var otherImageFormats = map[string]bool{"qcow": true, "qed": true, "vmdk": true, "vpc": true, "vdi": true}

// backingFormats are the formats qemu-img gives a backing file (-b).
var backingFormats = map[string]bool{"qcow2": true, "qcow": true, "qed": true, "vmdk": true}

// sniffFormat names the format of an image header other than qcow2 (""
// for none of them).
func sniffFormat(buf []byte) string {
	switch {
	case len(buf) >= 8 && string(buf[:4]) == "QFI\xfb" && binary.BigEndian.Uint32(buf[4:]) == 1:
		return "qcow"
	case len(buf) >= 4 && string(buf[:4]) == "QED\x00":
		return "qed"
	case len(buf) >= 4 && string(buf[:4]) == "KDMV":
		return "vmdk"
	case len(buf) >= 21 && string(buf[:21]) == "# Disk DescriptorFile":
		return "vmdk"
	case len(buf) >= 8 && string(buf[:8]) == "conectix":
		return "vpc"
	case len(buf) >= 0x44 && binary.LittleEndian.Uint32(buf[0x40:]) == 0xbeda107f:
		return "vdi"
	}
	return ""
}

// imageVirtualSize asks qemu-img for an image's virtual size (-U: a
// running guest may have it open). 0 when qemu-img cannot tell.
func imageVirtualSize(path, format string) uint64 {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "qemu-img", "info", "--output=json", "-U", "-f", format, path).Output()
	if err != nil {
		return 0
	}
	var info struct {
		VirtualSize uint64 `json:"virtual-size"`
	}
	if json.Unmarshal(out, &info) != nil {
		return 0
	}
	return info.VirtualSize
}
