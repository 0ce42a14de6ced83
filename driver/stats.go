package driver

import (
	"context"

	libvirt "github.com/digitalocean/go-libvirt"
)

// BlockStats are one disk's I/O counters (or every disk's, summed), as
// libvirt's QEMU driver gathers them from query-blockstats. Times are in
// nanoseconds.
type BlockStats struct {
	RdReq, RdBytes, RdTotalTimes int64
	WrReq, WrBytes, WrTotalTimes int64
	FlushReq, FlushTotalTimes    int64
}

// Vcpu is one online vCPU as virDomainGetVcpus reports it.
type Vcpu struct {
	Info libvirt.VcpuInfo
	// Affinity is the host CPUs its thread may run on.
	Affinity []int
}

// DomainStats are the per-domain statistics and the vCPU and monitor
// calls that go with them (virsh domblkstat, domifstat, dommemstat,
// vcpuinfo, vcpupin, qemu-monitor-command).
type DomainStats interface {
	// BlockStats returns a disk's counters; disk is its target (vda) or
	// source path, "" for the sum over every disk.
	BlockStats(ctx context.Context, dom libvirt.Domain, disk string) (BlockStats, error)
	// InterfaceStats returns a NIC's counters; device is its host
	// interface name or MAC address.
	InterfaceStats(ctx context.Context, dom libvirt.Domain, device string) (libvirt.DomainInterfaceStatsRet, error)
	// MemoryStats returns up to max memory statistics, in libvirt's order.
	MemoryStats(ctx context.Context, dom libvirt.Domain, max uint32, flags uint32) ([]libvirt.DomainMemoryStat, error)
	// SetMemoryStatsPeriod sets the balloon's statistics period in
	// seconds (flags: virDomainMemoryModFlags).
	SetMemoryStatsPeriod(ctx context.Context, dom libvirt.Domain, period int32, flags uint32) error
	// GetVcpus lists up to max online vCPUs of a running domain.
	GetVcpus(ctx context.Context, dom libvirt.Domain, max int) ([]Vcpu, error)
	// GetVcpuPinInfo returns the pinning of the first max vCPUs of the
	// live or persistent definition (flags: virDomainModificationImpact).
	GetVcpuPinInfo(ctx context.Context, dom libvirt.Domain, max int, flags uint32) ([][]int, error)
	// PinVcpu pins one vCPU to the given host CPUs.
	PinVcpu(ctx context.Context, dom libvirt.Domain, vcpu uint32, cpus []int, flags uint32) error
	// QEMUMonitorCommand runs a QMP command (or, with
	// VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP, an HMP command line) and
	// returns QEMU's reply.
	QEMUMonitorCommand(ctx context.Context, dom libvirt.Domain, cmd string, flags uint32) (string, error)
}
