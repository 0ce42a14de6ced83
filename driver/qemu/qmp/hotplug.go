package qmp

import (
	"context"
	"encoding/json"
)

// EventDeviceDeleted is QEMU's DEVICE_DELETED: a device_del finished
// (data: device, the id, absent for devices without one; path, the QOM
// path).
const EventDeviceDeleted = "DEVICE_DELETED"

// DeviceAdd plugs a device ("device_add"). props is the device's JSON
// object as on the -device command line: driver, id and the rest.
func (m *Monitor) DeviceAdd(ctx context.Context, props json.RawMessage) error {
	return m.Run(ctx, "device_add", props, nil)
}

// DeviceDel asks for a device's removal ("device_del"). A device the
// guest must release first (PCI, CPUs) goes only when the guest agrees:
// DEVICE_DELETED tells.
func (m *Monitor) DeviceDel(ctx context.Context, id string) error {
	return m.Run(ctx, "device_del", struct {
		ID string `json:"id"`
	}{id}, nil)
}

// BlockdevAdd adds a block node ("blockdev-add"); props is the node's
// JSON object as on the -blockdev command line.
func (m *Monitor) BlockdevAdd(ctx context.Context, props json.RawMessage) error {
	return m.Run(ctx, "blockdev-add", props, nil)
}

// NetdevAdd adds a network backend ("netdev_add"); props is the
// backend's JSON object as on the -netdev command line (a tap's "fd"
// names a descriptor passed with GetFD).
func (m *Monitor) NetdevAdd(ctx context.Context, props json.RawMessage) error {
	return m.Run(ctx, "netdev_add", props, nil)
}

// NetdevDel removes a network backend ("netdev_del").
func (m *Monitor) NetdevDel(ctx context.Context, id string) error {
	return m.Run(ctx, "netdev_del", struct {
		ID string `json:"id"`
	}{id}, nil)
}

// HotpluggableCPU is one entry of query-hotpluggable-cpus: a CPU slot,
// occupied when QOMPath is set.
type HotpluggableCPU struct {
	Type       string         `json:"type"`
	VCPUsCount int            `json:"vcpus-count"`
	Props      map[string]int `json:"props"`
	QOMPath    string         `json:"qom-path,omitempty"`
}

// QueryHotpluggableCPUs lists the machine's CPU slots
// ("query-hotpluggable-cpus").
func (m *Monitor) QueryHotpluggableCPUs(ctx context.Context) ([]HotpluggableCPU, error) {
	var cpus []HotpluggableCPU
	err := m.Run(ctx, "query-hotpluggable-cpus", nil, &cpus)
	return cpus, err
}

type trayID struct {
	ID    string `json:"id"`
	Force bool   `json:"force,omitempty"`
}

// BlockdevOpenTray opens a removable drive's tray ("blockdev-open-tray");
// force opens it even if the guest has locked it.
func (m *Monitor) BlockdevOpenTray(ctx context.Context, id string, force bool) error {
	return m.Run(ctx, "blockdev-open-tray", trayID{id, force}, nil)
}

// BlockdevCloseTray closes a removable drive's tray ("blockdev-close-tray").
func (m *Monitor) BlockdevCloseTray(ctx context.Context, id string) error {
	return m.Run(ctx, "blockdev-close-tray", trayID{ID: id}, nil)
}

// BlockdevRemoveMedium takes the medium out of an open drive
// ("blockdev-remove-medium").
func (m *Monitor) BlockdevRemoveMedium(ctx context.Context, id string) error {
	return m.Run(ctx, "blockdev-remove-medium", trayID{ID: id}, nil)
}

// BlockdevInsertMedium puts the block node into an open, empty drive
// ("blockdev-insert-medium").
func (m *Monitor) BlockdevInsertMedium(ctx context.Context, id, node string) error {
	return m.Run(ctx, "blockdev-insert-medium", struct {
		ID       string `json:"id"`
		NodeName string `json:"node-name"`
	}{id, node}, nil)
}
