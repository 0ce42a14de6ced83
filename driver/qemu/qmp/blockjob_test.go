package qmp

import "testing"

// TestBlockJobCommandJSON checks the storage migration commands' exact
// JSON (as libvirt 9.0 sends them to QEMU 7.2) and the decoding of
// query-block-jobs.
func TestBlockJobCommandJSON(t *testing.T) {
	s := newMockQEMU(t)
	m := dialMock(t, s)
	ctx := testCtx(t)
	cases := []commandCase{
		{
			name: "nbd-server-start",
			call: func() (any, error) { return nil, m.NBDServerStart(ctx, NBDAddress{Host: "127.0.0.2", Port: 49153}, "") },
			want: `{"execute":"nbd-server-start","arguments":{"addr":{"type":"inet","data":{"host":"127.0.0.2","port":"49153"}}}}`,
		},
		{
			name: "nbd-server-start tls",
			call: func() (any, error) {
				return nil, m.NBDServerStart(ctx, NBDAddress{Host: "127.0.0.2", Port: 49153}, "objlibvirt_migrate_tls0")
			},
			want: `{"execute":"nbd-server-start","arguments":{"addr":{"type":"inet","data":{"host":"127.0.0.2","port":"49153"}},"tls-creds":"objlibvirt_migrate_tls0"}}`,
		},
		{
			name: "blockdev-add nbd tls",
			call: func() (any, error) {
				return nil, m.BlockdevAddNBD(ctx, "migration-vda-storage", NBDAddress{Host: "127.0.0.2", Port: 49153}, "drive-virtio-disk0", "objlibvirt_migrate_tls0", "127.0.0.2")
			},
			want: `{"execute":"blockdev-add","arguments":{"driver":"nbd","server":{"type":"inet","host":"127.0.0.2","port":"49153"},"export":"drive-virtio-disk0","node-name":"migration-vda-storage","read-only":false,"tls-creds":"objlibvirt_migrate_tls0","tls-hostname":"127.0.0.2"}}`,
		},
		{
			name: "nbd-server-start unix",
			call: func() (any, error) { return nil, m.NBDServerStart(ctx, NBDAddress{Socket: "/run/x.sock"}, "") },
			want: `{"execute":"nbd-server-start","arguments":{"addr":{"type":"unix","data":{"path":"/run/x.sock"}}}}`,
		},
		{
			name: "blockdev-add nbd unix",
			call: func() (any, error) {
				return nil, m.BlockdevAddNBD(ctx, "migration-vda-storage", NBDAddress{Socket: "/run/x.sock"}, "drive-virtio-disk0", "", "")
			},
			want: `{"execute":"blockdev-add","arguments":{"driver":"nbd","server":{"type":"unix","path":"/run/x.sock"},"export":"drive-virtio-disk0","node-name":"migration-vda-storage","read-only":false}}`,
		},
		{
			name: "nbd-server-stop",
			call: func() (any, error) { return nil, m.NBDServerStop(ctx) },
			want: `{"execute":"nbd-server-stop"}`,
		},
		{
			name: "block-export-add",
			call: func() (any, error) {
				return nil, m.BlockExportAddNBD(ctx, "libvirt-nbd-libvirt-1-format", "libvirt-1-format", "drive-virtio-disk0", true)
			},
			want: `{"execute":"block-export-add","arguments":{"type":"nbd","id":"libvirt-nbd-libvirt-1-format","node-name":"libvirt-1-format","name":"drive-virtio-disk0","writable":true}}`,
		},
		{
			name: "blockdev-add nbd",
			call: func() (any, error) {
				return nil, m.BlockdevAddNBD(ctx, "migration-vda-storage", NBDAddress{Host: "127.0.0.2", Port: 49153}, "drive-virtio-disk0", "", "")
			},
			want: `{"execute":"blockdev-add","arguments":{"driver":"nbd","server":{"type":"inet","host":"127.0.0.2","port":"49153"},"export":"drive-virtio-disk0","node-name":"migration-vda-storage","read-only":false}}`,
		},
		{
			name: "blockdev-del",
			call: func() (any, error) { return nil, m.BlockdevDel(ctx, "migration-vda-storage") },
			want: `{"execute":"blockdev-del","arguments":{"node-name":"migration-vda-storage"}}`,
		},
		{
			name: "blockdev-mirror",
			call: func() (any, error) {
				return nil, m.BlockdevMirror(ctx, Mirror{JobID: "drive-virtio-disk0", Device: "libvirt-1-format", Target: "migration-vda-storage", Sync: "full", Speed: 1 << 20, CopyMode: "write-blocking"})
			},
			want: `{"execute":"blockdev-mirror","arguments":{"job-id":"drive-virtio-disk0","device":"libvirt-1-format","target":"migration-vda-storage","sync":"full","speed":1048576,"copy-mode":"write-blocking","auto-dismiss":false}}`,
		},
		{
			name:  "query-block-jobs",
			reply: `{"return": [{"auto-finalize": true, "io-status": "ok", "device": "drive-virtio-disk0", "auto-dismiss": false, "busy": false, "len": 10485760, "offset": 10485760, "status": "ready", "paused": false, "speed": 0, "ready": true, "type": "mirror"}]}`,
			call:  func() (any, error) { return m.QueryBlockJobs(ctx) },
			want:  `{"execute":"query-block-jobs"}`,
			check: wantValue([]BlockJob{{Device: "drive-virtio-disk0", Type: "mirror", Len: 10485760, Offset: 10485760, Ready: true, Status: "ready"}}),
		},
		{
			name: "block-job-cancel",
			call: func() (any, error) { return nil, m.BlockJobCancel(ctx, "drive-virtio-disk0", false) },
			want: `{"execute":"block-job-cancel","arguments":{"device":"drive-virtio-disk0"}}`,
		},
		{
			name: "block-job-cancel force",
			call: func() (any, error) { return nil, m.BlockJobCancel(ctx, "drive-virtio-disk0", true) },
			want: `{"execute":"block-job-cancel","arguments":{"device":"drive-virtio-disk0","force":true}}`,
		},
		{
			name: "job-dismiss",
			call: func() (any, error) { return nil, m.JobDismiss(ctx, "drive-virtio-disk0") },
			want: `{"execute":"job-dismiss","arguments":{"id":"drive-virtio-disk0"}}`,
		},
	}
	runCommandCases(t, s, cases)
}
