package driver

import (
	"context"

	libvirt "github.com/digitalocean/go-libvirt"
)

// DomainDevices changes a domain's devices, memory and vCPUs, in the
// running QEMU (VIR_DOMAIN_AFFECT_LIVE), in the persistent definition
// (VIR_DOMAIN_AFFECT_CONFIG) or both: virsh attach-device, detach-device,
// update-device, setmem, setmaxmem and setvcpus.
type DomainDevices interface {
	// AttachDevice adds the device described by xml
	// (virDomainAttachDeviceFlags).
	AttachDevice(ctx context.Context, dom libvirt.Domain, xml string, flags uint32) error
	// DetachDevice removes the device matching xml
	// (virDomainDetachDeviceFlags).
	DetachDevice(ctx context.Context, dom libvirt.Domain, xml string, flags uint32) error
	// UpdateDevice changes a device in place (virDomainUpdateDeviceFlags).
	UpdateDevice(ctx context.Context, dom libvirt.Domain, xml string, flags uint32) error
	// SetMemory sets the current memory, or with VIR_DOMAIN_MEM_MAXIMUM
	// the maximum, in KiB (virDomainSetMemoryFlags).
	SetMemory(ctx context.Context, dom libvirt.Domain, kib uint64, flags uint32) error
	// SetVcpus sets the number of vCPUs, or with VIR_DOMAIN_VCPU_MAXIMUM
	// the maximum (virDomainSetVcpusFlags).
	SetVcpus(ctx context.Context, dom libvirt.Domain, n uint32, flags uint32) error
}
