package qmp

import (
	"encoding/json"
	"testing"
)

// TestHotplugCommandJSON checks the hotplug commands' JSON: the device
// and node objects pass through as built (the same text as on the
// command line), and query-hotpluggable-cpus decodes.
func TestHotplugCommandJSON(t *testing.T) {
	s := newMockQEMU(t)
	m := dialMock(t, s)
	ctx := testCtx(t)
	cases := []commandCase{
		{
			name: "blockdev-add",
			call: func() (any, error) {
				return nil, m.BlockdevAdd(ctx, json.RawMessage(`{"driver":"file","filename":"/tmp/a.qcow2","node-name":"libvirt-2-storage","auto-read-only":true,"discard":"unmap"}`))
			},
			want: `{"execute":"blockdev-add","arguments":{"driver":"file","filename":"/tmp/a.qcow2","node-name":"libvirt-2-storage","auto-read-only":true,"discard":"unmap"}}`,
		},
		{
			name: "device_add",
			call: func() (any, error) {
				return nil, m.DeviceAdd(ctx, json.RawMessage(`{"driver":"virtio-blk-pci","bus":"pci.0","addr":"0x5","drive":"libvirt-2-format","id":"virtio-disk1"}`))
			},
			want: `{"execute":"device_add","arguments":{"driver":"virtio-blk-pci","bus":"pci.0","addr":"0x5","drive":"libvirt-2-format","id":"virtio-disk1"}}`,
		},
		{
			name: "device_del",
			call: func() (any, error) { return nil, m.DeviceDel(ctx, "virtio-disk1") },
			want: `{"execute":"device_del","arguments":{"id":"virtio-disk1"}}`,
		},
		{
			name: "netdev_add",
			call: func() (any, error) {
				return nil, m.NetdevAdd(ctx, json.RawMessage(`{"type":"tap","fd":"tapfd-net1","id":"hostnet1"}`))
			},
			want: `{"execute":"netdev_add","arguments":{"type":"tap","fd":"tapfd-net1","id":"hostnet1"}}`,
		},
		{
			name: "netdev_del",
			call: func() (any, error) { return nil, m.NetdevDel(ctx, "hostnet1") },
			want: `{"execute":"netdev_del","arguments":{"id":"hostnet1"}}`,
		},
		{
			name: "blockdev-open-tray",
			call: func() (any, error) { return nil, m.BlockdevOpenTray(ctx, "ide0-1-0", true) },
			want: `{"execute":"blockdev-open-tray","arguments":{"id":"ide0-1-0","force":true}}`,
		},
		{
			name: "blockdev-remove-medium",
			call: func() (any, error) { return nil, m.BlockdevRemoveMedium(ctx, "ide0-1-0") },
			want: `{"execute":"blockdev-remove-medium","arguments":{"id":"ide0-1-0"}}`,
		},
		{
			name: "blockdev-insert-medium",
			call: func() (any, error) { return nil, m.BlockdevInsertMedium(ctx, "ide0-1-0", "libvirt-3-format") },
			want: `{"execute":"blockdev-insert-medium","arguments":{"id":"ide0-1-0","node-name":"libvirt-3-format"}}`,
		},
		{
			name: "blockdev-close-tray",
			call: func() (any, error) { return nil, m.BlockdevCloseTray(ctx, "ide0-1-0") },
			want: `{"execute":"blockdev-close-tray","arguments":{"id":"ide0-1-0"}}`,
		},
		{
			name:  "query-hotpluggable-cpus",
			reply: `{"return": [{"props": {"core-id": 0, "thread-id": 0, "socket-id": 1}, "vcpus-count": 1, "type": "qemu64-x86_64-cpu"}, {"props": {"core-id": 0, "thread-id": 0, "socket-id": 0}, "vcpus-count": 1, "qom-path": "/machine/unattached/device[0]", "type": "qemu64-x86_64-cpu"}]}`,
			call:  func() (any, error) { return m.QueryHotpluggableCPUs(ctx) },
			want:  `{"execute":"query-hotpluggable-cpus"}`,
			check: wantValue([]HotpluggableCPU{
				{Type: "qemu64-x86_64-cpu", VCPUsCount: 1, Props: map[string]int{"core-id": 0, "thread-id": 0, "socket-id": 1}},
				{Type: "qemu64-x86_64-cpu", VCPUsCount: 1, Props: map[string]int{"core-id": 0, "thread-id": 0, "socket-id": 0}, QOMPath: "/machine/unattached/device[0]"},
			}),
		},
	}
	runCommandCases(t, s, cases)
}
