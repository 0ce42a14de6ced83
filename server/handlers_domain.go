package server

import (
	libvirt "github.com/digitalocean/go-libvirt"
)

// registerDomainHandlers binds the domain lifecycle and query procedures.
// Each one is a thin shim: unpack, call the driver, pack.
func registerDomainHandlers(t *Table, s *Server) {
	drv := s.drv
	t.DomainLookupByName(func(c *Call, a *libvirt.DomainLookupByNameArgs) (*libvirt.DomainLookupByNameRet, error) {
		d, err := drv.LookupByName(c.Ctx, a.Name)
		return &libvirt.DomainLookupByNameRet{Dom: d}, err
	})
	t.DomainLookupByUUID(func(c *Call, a *libvirt.DomainLookupByUUIDArgs) (*libvirt.DomainLookupByUUIDRet, error) {
		d, err := drv.LookupByUUID(c.Ctx, a.UUID)
		return &libvirt.DomainLookupByUUIDRet{Dom: d}, err
	})
	t.DomainLookupByID(func(c *Call, a *libvirt.DomainLookupByIDArgs) (*libvirt.DomainLookupByIDRet, error) {
		d, err := drv.LookupByID(c.Ctx, a.ID)
		return &libvirt.DomainLookupByIDRet{Dom: d}, err
	})
	t.DomainDefineXML(func(c *Call, a *libvirt.DomainDefineXMLArgs) (*libvirt.DomainDefineXMLRet, error) {
		d, err := drv.DefineXML(c.Ctx, a.XML, 0)
		return &libvirt.DomainDefineXMLRet{Dom: d}, err
	})
	t.DomainDefineXMLFlags(func(c *Call, a *libvirt.DomainDefineXMLFlagsArgs) (*libvirt.DomainDefineXMLFlagsRet, error) {
		d, err := drv.DefineXML(c.Ctx, a.XML, uint32(a.Flags))
		return &libvirt.DomainDefineXMLFlagsRet{Dom: d}, err
	})
	t.DomainUndefine(func(c *Call, a *libvirt.DomainUndefineArgs) error {
		return drv.Undefine(c.Ctx, a.Dom, 0)
	})
	t.DomainUndefineFlags(func(c *Call, a *libvirt.DomainUndefineFlagsArgs) error {
		return drv.Undefine(c.Ctx, a.Dom, uint32(a.Flags))
	})
	t.DomainCreate(func(c *Call, a *libvirt.DomainCreateArgs) error {
		_, err := drv.Create(c.Ctx, a.Dom, 0)
		return err
	})
	t.DomainCreateWithFlags(func(c *Call, a *libvirt.DomainCreateWithFlagsArgs) (*libvirt.DomainCreateWithFlagsRet, error) {
		d, err := drv.Create(c.Ctx, a.Dom, a.Flags)
		return &libvirt.DomainCreateWithFlagsRet{Dom: d}, err
	})
	t.DomainCreateXML(func(c *Call, a *libvirt.DomainCreateXMLArgs) (*libvirt.DomainCreateXMLRet, error) {
		d, err := drv.CreateXML(c.Ctx, a.XMLDesc, uint32(a.Flags))
		return &libvirt.DomainCreateXMLRet{Dom: d}, err
	})
	t.DomainDestroy(func(c *Call, a *libvirt.DomainDestroyArgs) error {
		return drv.Destroy(c.Ctx, a.Dom, 0)
	})
	t.DomainDestroyFlags(func(c *Call, a *libvirt.DomainDestroyFlagsArgs) error {
		return drv.Destroy(c.Ctx, a.Dom, uint32(a.Flags))
	})
	t.DomainShutdown(func(c *Call, a *libvirt.DomainShutdownArgs) error {
		return drv.Shutdown(c.Ctx, a.Dom, 0)
	})
	t.DomainShutdownFlags(func(c *Call, a *libvirt.DomainShutdownFlagsArgs) error {
		return drv.Shutdown(c.Ctx, a.Dom, uint32(a.Flags))
	})
	t.DomainReboot(func(c *Call, a *libvirt.DomainRebootArgs) error {
		return drv.Reboot(c.Ctx, a.Dom, uint32(a.Flags))
	})
	t.DomainReset(func(c *Call, a *libvirt.DomainResetArgs) error {
		return drv.Reset(c.Ctx, a.Dom, a.Flags)
	})
	t.DomainSuspend(func(c *Call, a *libvirt.DomainSuspendArgs) error {
		return drv.Suspend(c.Ctx, a.Dom)
	})
	t.DomainResume(func(c *Call, a *libvirt.DomainResumeArgs) error {
		return drv.Resume(c.Ctx, a.Dom)
	})

	t.DomainGetInfo(func(c *Call, a *libvirt.DomainGetInfoArgs) (*libvirt.DomainGetInfoRet, error) {
		i, err := drv.GetInfo(c.Ctx, a.Dom)
		return &libvirt.DomainGetInfoRet{State: uint8(i.State), MaxMem: i.MaxMem, Memory: i.Memory, NrVirtCPU: i.NrVirtCPU, CPUTime: i.CPUTime}, err
	})
	t.DomainGetState(func(c *Call, a *libvirt.DomainGetStateArgs) (*libvirt.DomainGetStateRet, error) {
		st, reason, err := drv.GetState(c.Ctx, a.Dom)
		return &libvirt.DomainGetStateRet{State: st, Reason: reason}, err
	})
	t.DomainGetXMLDesc(func(c *Call, a *libvirt.DomainGetXMLDescArgs) (*libvirt.DomainGetXMLDescRet, error) {
		x, err := drv.GetXMLDesc(c.Ctx, a.Dom, a.Flags)
		return &libvirt.DomainGetXMLDescRet{XML: x}, err
	})
	t.DomainGetOsType(func(c *Call, a *libvirt.DomainGetOsTypeArgs) (*libvirt.DomainGetOsTypeRet, error) {
		x, err := drv.GetOSType(c.Ctx, a.Dom)
		return &libvirt.DomainGetOsTypeRet{Type: x}, err
	})
	t.DomainGetMaxMemory(func(c *Call, a *libvirt.DomainGetMaxMemoryArgs) (*libvirt.DomainGetMaxMemoryRet, error) {
		i, err := drv.GetInfo(c.Ctx, a.Dom)
		return &libvirt.DomainGetMaxMemoryRet{Memory: i.MaxMem}, err
	})
	t.DomainGetMaxVcpus(func(c *Call, a *libvirt.DomainGetMaxVcpusArgs) (*libvirt.DomainGetMaxVcpusRet, error) {
		i, err := drv.GetInfo(c.Ctx, a.Dom)
		return &libvirt.DomainGetMaxVcpusRet{Num: int32(i.NrVirtCPU)}, err
	})
	t.DomainGetVcpusFlags(func(c *Call, a *libvirt.DomainGetVcpusFlagsArgs) (*libvirt.DomainGetVcpusFlagsRet, error) {
		i, err := drv.GetInfo(c.Ctx, a.Dom)
		return &libvirt.DomainGetVcpusFlagsRet{Num: int32(i.NrVirtCPU)}, err
	})
	t.DomainIsActive(func(c *Call, a *libvirt.DomainIsActiveArgs) (*libvirt.DomainIsActiveRet, error) {
		v, err := drv.IsActive(c.Ctx, a.Dom)
		return &libvirt.DomainIsActiveRet{Active: boolInt(v)}, err
	})
	t.DomainIsPersistent(func(c *Call, a *libvirt.DomainIsPersistentArgs) (*libvirt.DomainIsPersistentRet, error) {
		v, err := drv.IsPersistent(c.Ctx, a.Dom)
		return &libvirt.DomainIsPersistentRet{Persistent: boolInt(v)}, err
	})
	t.DomainGetAutostart(func(c *Call, a *libvirt.DomainGetAutostartArgs) (*libvirt.DomainGetAutostartRet, error) {
		v, err := drv.GetAutostart(c.Ctx, a.Dom)
		return &libvirt.DomainGetAutostartRet{Autostart: boolInt(v)}, err
	})
	t.DomainSetAutostart(func(c *Call, a *libvirt.DomainSetAutostartArgs) error {
		return drv.SetAutostart(c.Ctx, a.Dom, a.Autostart != 0)
	})

	t.ConnectGetAllDomainStats(func(c *Call, a *libvirt.ConnectGetAllDomainStatsArgs) (*libvirt.ConnectGetAllDomainStatsRet, error) {
		recs, err := drv.GetAllDomainStats(c.Ctx, a.Doms, a.Stats, a.Flags)
		return &libvirt.ConnectGetAllDomainStatsRet{RetStats: recs}, err
	})
	t.DomainGetBlockInfo(func(c *Call, a *libvirt.DomainGetBlockInfoArgs) (*libvirt.DomainGetBlockInfoRet, error) {
		capacity, alloc, phys, err := drv.GetBlockInfo(c.Ctx, a.Dom, a.Path)
		return &libvirt.DomainGetBlockInfoRet{Capacity: capacity, Allocation: alloc, Physical: phys}, err
	})

	// What `virsh dominfo` and `virsh undefine` ask besides: security
	// labels, taint messages and snapshots (managed save is
	// handlers_save.go's). govirtd keeps no snapshots and runs without a
	// security driver (model "none", as the reference libvirtd hosts), so
	// the answers are empty, but only for a domain that exists.
	exists := func(c *Call, d libvirt.Domain) error {
		_, err := drv.IsActive(c.Ctx, d)
		return err
	}
	t.NodeGetSecurityModel(func(c *Call) (*libvirt.NodeGetSecurityModelRet, error) {
		return &libvirt.NodeGetSecurityModelRet{Model: cString("none"), Doi: cString("0")}, nil
	})
	t.DomainGetSecurityLabel(func(c *Call, a *libvirt.DomainGetSecurityLabelArgs) (*libvirt.DomainGetSecurityLabelRet, error) {
		return &libvirt.DomainGetSecurityLabelRet{Label: cString("")}, exists(c, a.Dom)
	})
	t.DomainGetMessages(func(c *Call, a *libvirt.DomainGetMessagesArgs) (*libvirt.DomainGetMessagesRet, error) {
		return &libvirt.DomainGetMessagesRet{}, exists(c, a.Dom)
	})
}

func boolInt(b bool) int32 {
	if b {
		return 1
	}
	return 0
}

// cString is a C string as remote_protocol.x carries char arrays: each
// character, then the terminating NUL.
func cString(s string) []int8 {
	out := make([]int8, len(s)+1)
	for i := 0; i < len(s); i++ {
		out[i] = int8(s[i])
	}
	return out
}
