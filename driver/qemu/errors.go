package qemu

import (
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

func formatUUID(u libvirt.UUID) string { return compat.FormatUUID(u) }

func parseUUID(s string) (libvirt.UUID, error) {
	u, err := compat.ParseUUID(s)
	return libvirt.UUID(u), err
}
