package server

import (
	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver"
	"github.com/govirtd/govirtd/rpc"
)

// diskErrorsMax is REMOTE_DOMAIN_DISK_ERRORS_MAX.
const diskErrorsMax = 256

// diskErrorsRet is remote_domain_get_disk_errors_ret, declared here
// because go-libvirt's DomainDiskError keeps the error code in an
// unexported field the codec cannot see.
type diskErrorsRet struct {
	Errors  []driver.DiskError
	Nerrors int32
}

// diskErrorsArgs is remote_domain_get_disk_errors_args.
type diskErrorsArgs struct {
	Dom      libvirt.Domain
	Maxerror uint32
	Flags    uint32
}

// registerDiskErrorHandlers binds DOMAIN_GET_DISK_ERRORS (virsh
// domblkerror) when the driver reports disk errors.
func registerDiskErrorHandlers(t *Table, s *Server) {
	de, ok := s.drv.(driver.DomainDiskErrors)
	if !ok {
		return
	}
	bind(t, rpc.ProcDomainGetDiskErrors, func(c *Call, a *diskErrorsArgs) (*diskErrorsRet, error) {
		if a.Maxerror > diskErrorsMax {
			return nil, compat.Errorf(libvirt.ErrRPC, compat.FromRPC, "maxerrors too large")
		}
		errs, n, err := de.GetDiskErrors(c.Ctx, a.Dom, a.Maxerror, a.Flags)
		if err != nil {
			return nil, err
		}
		return &diskErrorsRet{Errors: errs, Nerrors: n}, nil
	})
}
