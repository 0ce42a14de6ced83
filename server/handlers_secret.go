package server

import (
	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
)

// maxSecretList is REMOTE_SECRET_LIST_MAX: the most UUIDs one
// CONNECT_LIST_SECRETS reply may carry.
const maxSecretList = 16384

// registerSecretHandlers binds the secret procedures to the secret driver.
// Thin shims: unpack, call the driver, pack. Values pass through here on
// their way to and from the driver; nothing here logs or wraps them (the
// call log names the procedure only, see Conn.logCall).
func registerSecretHandlers(t *Table, s *Server) {
	sec := s.secrets
	t.SecretDefineXML(func(c *Call, a *libvirt.SecretDefineXMLArgs) (*libvirt.SecretDefineXMLRet, error) {
		r, err := sec.DefineSecret(c.Ctx, a.XML, a.Flags)
		return &libvirt.SecretDefineXMLRet{OptSecret: r}, err
	})
	t.SecretUndefine(func(c *Call, a *libvirt.SecretUndefineArgs) error {
		return sec.UndefineSecret(c.Ctx, a.OptSecret.UUID)
	})
	t.SecretGetXMLDesc(func(c *Call, a *libvirt.SecretGetXMLDescArgs) (*libvirt.SecretGetXMLDescRet, error) {
		x, err := sec.SecretXMLDesc(c.Ctx, a.OptSecret.UUID, a.Flags)
		return &libvirt.SecretGetXMLDescRet{XML: x}, err
	})
	t.SecretLookupByUUID(func(c *Call, a *libvirt.SecretLookupByUUIDArgs) (*libvirt.SecretLookupByUUIDRet, error) {
		r, err := sec.LookupSecretByUUID(c.Ctx, a.UUID)
		return &libvirt.SecretLookupByUUIDRet{OptSecret: r}, err
	})
	t.SecretLookupByUsage(func(c *Call, a *libvirt.SecretLookupByUsageArgs) (*libvirt.SecretLookupByUsageRet, error) {
		r, err := sec.LookupSecretByUsage(c.Ctx, a.UsageType, a.UsageID)
		return &libvirt.SecretLookupByUsageRet{OptSecret: r}, err
	})
	t.SecretSetValue(func(c *Call, a *libvirt.SecretSetValueArgs) error {
		return sec.SetSecretValue(c.Ctx, a.OptSecret.UUID, a.Value, a.Flags)
	})
	t.SecretGetValue(func(c *Call, a *libvirt.SecretGetValueArgs) (*libvirt.SecretGetValueRet, error) {
		v, err := sec.SecretValue(c.Ctx, a.OptSecret.UUID, a.Flags)
		return &libvirt.SecretGetValueRet{Value: v}, err
	})

	t.ConnectListAllSecrets(func(c *Call, a *libvirt.ConnectListAllSecretsArgs) (*libvirt.ConnectListAllSecretsRet, error) {
		list, err := sec.ListAllSecrets(c.Ctx, a.Flags)
		if err != nil {
			return nil, err
		}
		ret := &libvirt.ConnectListAllSecretsRet{Ret: uint32(len(list))}
		// need_results=0 asks only for the count.
		if a.NeedResults != 0 {
			ret.Secrets = list
		}
		return ret, nil
	})
	t.ConnectNumOfSecrets(func(c *Call) (*libvirt.ConnectNumOfSecretsRet, error) {
		list, err := sec.ListAllSecrets(c.Ctx, 0)
		return &libvirt.ConnectNumOfSecretsRet{Num: int32(len(list))}, err
	})
	t.ConnectListSecrets(func(c *Call, a *libvirt.ConnectListSecretsArgs) (*libvirt.ConnectListSecretsRet, error) {
		if a.Maxuuids < 0 || a.Maxuuids > maxSecretList {
			return nil, compat.Errorf(libvirt.ErrRPC, compat.FromRPC, "maxuuids > REMOTE_SECRET_LIST_MAX")
		}
		list, err := sec.ListAllSecrets(c.Ctx, 0)
		if err != nil {
			return nil, err
		}
		ret := &libvirt.ConnectListSecretsRet{}
		for _, r := range list {
			if len(ret.Uuids) == int(a.Maxuuids) {
				break
			}
			ret.Uuids = append(ret.Uuids, compat.FormatUUID(r.UUID))
		}
		return ret, nil
	})

	t.ConnectSecretEventRegisterAny(func(c *Call, a *libvirt.ConnectSecretEventRegisterAnyArgs) (*libvirt.ConnectSecretEventRegisterAnyRet, error) {
		if a.EventID < 0 || a.EventID > int32(libvirt.SecretEventIDValueChanged) {
			return nil, compat.Errorf(libvirt.ErrInternalError, compat.FromNone, "unsupported secret event ID %d", a.EventID)
		}
		var only *libvirt.UUID
		if len(a.OptSecret) > 0 {
			u := a.OptSecret[0].UUID
			only = &u
		}
		return &libvirt.ConnectSecretEventRegisterAnyRet{CallbackID: c.Conn.secretEvents.register(a.EventID, only)}, nil
	})
	t.ConnectSecretEventDeregisterAny(func(c *Call, a *libvirt.ConnectSecretEventDeregisterAnyArgs) error {
		return c.Conn.secretEvents.deregister(a.CallbackID)
	})
}
