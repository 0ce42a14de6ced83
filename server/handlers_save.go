package server

import (
	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
)

// registerSaveHandlers binds virsh save, restore, managedsave and the
// save image procedures to the driver.
func registerSaveHandlers(t *Table, s *Server) {
	drv := s.drv
	t.DomainSave(func(c *Call, a *libvirt.DomainSaveArgs) error {
		return drv.Save(c.Ctx, a.Dom, a.To, "", 0)
	})
	t.DomainSaveFlags(func(c *Call, a *libvirt.DomainSaveFlagsArgs) error {
		return drv.Save(c.Ctx, a.Dom, a.To, optString(a.Dxml), a.Flags)
	})
	t.DomainSaveParams(func(c *Call, a *libvirt.DomainSaveParamsArgs) error {
		file, dxml, err := saveParams(a.Params)
		if err != nil {
			return err
		}
		return drv.Save(c.Ctx, a.Dom, file, dxml, a.Flags)
	})
	t.DomainRestore(func(c *Call, a *libvirt.DomainRestoreArgs) error {
		return drv.Restore(c.Ctx, a.From, "", 0)
	})
	t.DomainRestoreFlags(func(c *Call, a *libvirt.DomainRestoreFlagsArgs) error {
		return drv.Restore(c.Ctx, a.From, optString(a.Dxml), a.Flags)
	})
	t.DomainRestoreParams(func(c *Call, a *libvirt.DomainRestoreParamsArgs) error {
		file, dxml, err := saveParams(a.Params)
		if err != nil {
			return err
		}
		return drv.Restore(c.Ctx, file, dxml, a.Flags)
	})
	t.DomainSaveImageGetXMLDesc(func(c *Call, a *libvirt.DomainSaveImageGetXMLDescArgs) (*libvirt.DomainSaveImageGetXMLDescRet, error) {
		if err := checkSecureXML(c, a.Flags, "virDomainSaveImageGetXMLDesc"); err != nil {
			return nil, err
		}
		x, err := drv.SaveImageGetXMLDesc(c.Ctx, a.File, a.Flags)
		return &libvirt.DomainSaveImageGetXMLDescRet{XML: x}, err
	})
	t.DomainSaveImageDefineXML(func(c *Call, a *libvirt.DomainSaveImageDefineXMLArgs) error {
		return drv.SaveImageDefineXML(c.Ctx, a.File, a.Dxml, a.Flags)
	})
	t.DomainManagedSave(func(c *Call, a *libvirt.DomainManagedSaveArgs) error {
		return drv.ManagedSave(c.Ctx, a.Dom, a.Flags)
	})
	t.DomainHasManagedSaveImage(func(c *Call, a *libvirt.DomainHasManagedSaveImageArgs) (*libvirt.DomainHasManagedSaveImageRet, error) {
		has, err := drv.HasManagedSaveImage(c.Ctx, a.Dom, a.Flags)
		ret := &libvirt.DomainHasManagedSaveImageRet{}
		if has {
			ret.Result = 1
		}
		return ret, err
	})
	t.DomainManagedSaveRemove(func(c *Call, a *libvirt.DomainManagedSaveRemoveArgs) error {
		return drv.ManagedSaveRemove(c.Ctx, a.Dom, a.Flags)
	})
	t.DomainManagedSaveGetXMLDesc(func(c *Call, a *libvirt.DomainManagedSaveGetXMLDescArgs) (*libvirt.DomainManagedSaveGetXMLDescRet, error) {
		if err := checkSecureXML(c, uint32(a.Flags), "virDomainManagedSaveGetXMLDesc"); err != nil {
			return nil, err
		}
		x, err := drv.ManagedSaveGetXMLDesc(c.Ctx, a.Dom, uint32(a.Flags))
		return &libvirt.DomainManagedSaveGetXMLDescRet{XML: x}, err
	})
	t.DomainManagedSaveDefineXML(func(c *Call, a *libvirt.DomainManagedSaveDefineXMLArgs) error {
		return drv.ManagedSaveDefineXML(c.Ctx, a.Dom, optString(a.Dxml), uint32(a.Flags))
	})
}

// checkSecureXML: the read-only socket may read a save image's XML, but
// not with its passwords (libvirt refuses the secure flag there).
func checkSecureXML(c *Call, flags uint32, api string) error {
	if c.Conn.ReadOnly() && flags&uint32(libvirt.DomainSaveImageXMLSecure) != 0 {
		return compat.Errorf(libvirt.ErrOperationDenied, compat.FromNone, "%s with secure flag", api)
	}
	return nil
}

// saveParams reads the typed parameters of DOMAIN_SAVE_PARAMS and
// DOMAIN_RESTORE_PARAMS: "file" and "dxml" (VIR_DOMAIN_SAVE_PARAM_*).
func saveParams(params []libvirt.TypedParam) (file, dxml string, err error) {
	for _, p := range params {
		v, ok := p.Value.I.(string)
		switch p.Field {
		case "file", "dxml":
			if !ok {
				return "", "", compat.Errorf(libvirt.ErrInvalidArg, compat.FromNone, "invalid type for parameter '%s'", p.Field)
			}
			if p.Field == "file" {
				file = v
			} else {
				dxml = v
			}
		default:
			return "", "", compat.Errorf(libvirt.ErrArgumentUnsupported, compat.FromNone, "parameter '%s' not supported", p.Field)
		}
	}
	if file == "" {
		return "", "", compat.Errorf(libvirt.ErrInvalidArg, compat.FromNone, "missing file parameter")
	}
	return file, dxml, nil
}
