package server

import (
	libvirt "github.com/digitalocean/go-libvirt"
)

// registerDeviceHandlers binds device hotplug, memory and vCPU changes to
// the driver. The flagless procedures are their _FLAGS forms with the
// flags libvirt's QEMU driver passes (qemuDomainAttachDevice,
// qemuDomainSetMemory, qemuDomainSetMaxMemory, qemuDomainSetVcpus).
func registerDeviceHandlers(t *Table, s *Server) {
	drv := s.drv
	live := uint32(libvirt.DomainAffectLive)
	t.DomainAttachDevice(func(c *Call, a *libvirt.DomainAttachDeviceArgs) error {
		return drv.AttachDevice(c.Ctx, a.Dom, a.XML, live)
	})
	t.DomainAttachDeviceFlags(func(c *Call, a *libvirt.DomainAttachDeviceFlagsArgs) error {
		return drv.AttachDevice(c.Ctx, a.Dom, a.XML, a.Flags)
	})
	t.DomainDetachDevice(func(c *Call, a *libvirt.DomainDetachDeviceArgs) error {
		return drv.DetachDevice(c.Ctx, a.Dom, a.XML, live)
	})
	t.DomainDetachDeviceFlags(func(c *Call, a *libvirt.DomainDetachDeviceFlagsArgs) error {
		return drv.DetachDevice(c.Ctx, a.Dom, a.XML, a.Flags)
	})
	t.DomainUpdateDeviceFlags(func(c *Call, a *libvirt.DomainUpdateDeviceFlagsArgs) error {
		return drv.UpdateDevice(c.Ctx, a.Dom, a.XML, uint32(a.Flags))
	})
	t.DomainSetMemory(func(c *Call, a *libvirt.DomainSetMemoryArgs) error {
		return drv.SetMemory(c.Ctx, a.Dom, a.Memory, live)
	})
	t.DomainSetMemoryFlags(func(c *Call, a *libvirt.DomainSetMemoryFlagsArgs) error {
		return drv.SetMemory(c.Ctx, a.Dom, a.Memory, a.Flags)
	})
	t.DomainSetMaxMemory(func(c *Call, a *libvirt.DomainSetMaxMemoryArgs) error {
		return drv.SetMemory(c.Ctx, a.Dom, a.Memory, uint32(libvirt.DomainMemMaximum))
	})
	t.DomainSetVcpus(func(c *Call, a *libvirt.DomainSetVcpusArgs) error {
		return drv.SetVcpus(c.Ctx, a.Dom, a.Nvcpus, live)
	})
	t.DomainSetVcpusFlags(func(c *Call, a *libvirt.DomainSetVcpusFlagsArgs) error {
		return drv.SetVcpus(c.Ctx, a.Dom, a.Nvcpus, a.Flags)
	})
}
