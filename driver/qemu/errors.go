package qemu

import (
	"fmt"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
)

// Errors worded as libvirt's QEMU driver words them; clients and scripts
// match on these.

func errNoDomainUUID(uuid libvirt.UUID, name string) error {
	return compat.Errorf(libvirt.ErrNoDomain, compat.FromQEMU, "no domain with matching uuid '%s' (%s)", formatUUID(uuid), name)
}

func errNoDomainName(name string) error {
	return compat.Errorf(libvirt.ErrNoDomain, compat.FromQEMU, "no domain with matching name '%s'", name)
}

func errNoDomainID(id int32) error {
	return compat.Errorf(libvirt.ErrNoDomain, compat.FromQEMU, "no domain with matching id %d", id)
}

func errNotRunning() error {
	return compat.Errorf(libvirt.ErrOperationInvalid, compat.FromDomain, "domain is not running")
}

func errAlreadyRunning() error {
	return compat.Errorf(libvirt.ErrOperationInvalid, compat.FromDomain, "domain is already running")
}

func errUnsupportedFlags(flags uint32) error {
	return compat.Errorf(libvirt.ErrInvalidArg, compat.FromQEMU, "unsupported flags (0x%x) in function", flags)
}

func formatUUID(u libvirt.UUID) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// parseUUID parses the canonical textual form.
func parseUUID(s string) (libvirt.UUID, error) {
	var u libvirt.UUID
	hex := make([]byte, 0, 32)
	for i := 0; i < len(s); i++ {
		if s[i] == '-' {
			continue
		}
		hex = append(hex, s[i])
	}
	if len(hex) != 32 {
		return u, fmt.Errorf("malformed uuid %q", s)
	}
	for i := 0; i < 16; i++ {
		var b byte
		for _, c := range hex[2*i : 2*i+2] {
			b <<= 4
			switch {
			case c >= '0' && c <= '9':
				b |= c - '0'
			case c >= 'a' && c <= 'f':
				b |= c - 'a' + 10
			case c >= 'A' && c <= 'F':
				b |= c - 'A' + 10
			default:
				return u, fmt.Errorf("malformed uuid %q", s)
			}
		}
		u[i] = b
	}
	return u, nil
}
