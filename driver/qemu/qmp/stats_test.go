package qmp

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// TestStatsCommands: the commands behind libvirt's statistics calls, in
// the mock-socket style of TestCommandJSON, with replies as QEMU 7.2 sends
// them.
func TestStatsCommands(t *testing.T) {
	s := newMockQEMU(t)
	m := dialMock(t, s)
	ctx := testCtx(t)

	t.Run("query-blockstats", func(t *testing.T) {
		s.handle("query-blockstats", answer(`{"return": [{"device": "", "parent": {"node-name": "libvirt-1-storage",
			"stats": {"flush_total_time_ns": 0, "wr_highest_offset": 8192, "wr_total_time_ns": 0, "wr_bytes": 0, "rd_total_time_ns": 0,
			"flush_operations": 0, "wr_operations": 0, "rd_bytes": 0, "rd_operations": 0}},
			"stats": {"flush_total_time_ns": 11, "wr_highest_offset": 4096, "wr_total_time_ns": 22, "failed_wr_operations": 0,
			"wr_bytes": 4096, "timed_stats": [], "account_invalid": true, "rd_total_time_ns": 723766, "flush_operations": 3,
			"wr_operations": 1, "rd_bytes": 512, "idle_time_ns": 1000, "rd_operations": 1},
			"node-name": "libvirt-1-format", "qdev": "/machine/peripheral/virtio-disk0/virtio-backend"}]}`))
		got, err := m.QueryBlockstats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		assertCommand(t, s.lastCommand(), `{"execute":"query-blockstats","arguments":{"query-nodes":false}}`)
		want := []BlockStats{{
			NodeName: "libvirt-1-format", QDev: "/machine/peripheral/virtio-disk0/virtio-backend",
			Stats: BlockDeviceStats{RdBytes: 512, WrBytes: 4096, RdOperations: 1, WrOperations: 1, FlushOperations: 3,
				RdTotalTimeNs: 723766, WrTotalTimeNs: 22, FlushTotalTimeNs: 11, WrHighestOffset: 4096},
			Parent: &BlockStatsParent{NodeName: "libvirt-1-storage", Stats: BlockDeviceStats{WrHighestOffset: 8192}},
		}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %+v\nwant %+v", got, want)
		}
	})

	t.Run("query-block image", func(t *testing.T) {
		s.handle("query-block", answer(`{"return": [{"device": "", "qdev": "/machine/peripheral/virtio-disk0/virtio-backend", "type": "unknown",
			"locked": false, "removable": false, "inserted": {"file": "/d.raw", "node-name": "libvirt-1-format", "drv": "raw", "ro": false,
			"image": {"virtual-size": 16777216, "filename": "/d.raw", "format": "raw", "actual-size": 4096, "dirty-flag": false},
			"backing_file_depth": 0, "encrypted": false, "detect_zeroes": "off", "write_threshold": 0}}]}`))
		got, err := m.QueryBlock(ctx)
		if err != nil {
			t.Fatal(err)
		}
		img := got[0].Inserted.Image
		if img == nil || img.VirtualSize != 16777216 || img.ActualSize == nil || *img.ActualSize != 4096 || img.Format != "raw" {
			t.Errorf("image = %+v", img)
		}
	})

	t.Run("balloon guest-stats", func(t *testing.T) {
		s.handle("qom-get", answer(`{"return": {"stats": {"stat-swap-out": 0, "stat-available-memory": 94208000,
			"stat-htlb-pgalloc": 18446744073709551615, "stat-free-memory": 80000000, "stat-total-memory": 120000000,
			"stat-minor-faults": 5000, "stat-major-faults": 20, "stat-disk-caches": 9000000, "stat-swap-in": 0,
			"stat-htlb-pgfail": 18446744073709551615}, "last-update": 1764755000}}`))
		got, err := m.BalloonGuestStats(ctx, "/machine/peripheral/balloon0")
		if err != nil {
			t.Fatal(err)
		}
		assertCommand(t, s.lastCommand(), `{"execute":"qom-get","arguments":{"path":"/machine/peripheral/balloon0","property":"guest-stats"}}`)
		if got.LastUpdate != 1764755000 || got.Stats["stat-free-memory"] != 80000000 || got.Stats["stat-htlb-pgfail"] != StatUnset || len(got.Stats) != 10 {
			t.Errorf("got %+v", got)
		}
	})

	t.Run("balloon polling interval", func(t *testing.T) {
		for _, n := range []int{5, 0} {
			if err := m.SetBalloonStatsPeriod(ctx, "/machine/peripheral/balloon0", n); err != nil {
				t.Fatal(err)
			}
			want := `{"execute":"qom-set","arguments":{"path":"/machine/peripheral/balloon0","property":"guest-stats-polling-interval","value":` + map[int]string{5: "5", 0: "0"}[n] + `}}`
			assertCommand(t, s.lastCommand(), want)
		}
	})

	t.Run("human-monitor-command", func(t *testing.T) {
		s.handle("human-monitor-command", answer(`{"return": "VM status: running\r\n"}`))
		got, err := m.HumanMonitorCommand(ctx, "info status")
		if err != nil {
			t.Fatal(err)
		}
		assertCommand(t, s.lastCommand(), `{"execute":"human-monitor-command","arguments":{"command-line":"info status"}}`)
		if got != "VM status: running\r\n" {
			t.Errorf("got %q", got)
		}
	})
}

// TestRunRaw: a caller's command goes out with the monitor's id, and the
// reply comes back as QEMU wrote it (compacted), errors included.
func TestRunRaw(t *testing.T) {
	s := newMockQEMU(t)
	m := dialMock(t, s)
	ctx := testCtx(t)

	s.handle("query-status", answer(`{"return": {"status": "running", "singlestep": false, "running": true}}`))
	got, err := m.RunRaw(ctx, []byte(` {"execute": "query-status", "id": "mine"} `))
	if err != nil {
		t.Fatal(err)
	}
	c := s.lastCommand()
	assertCommand(t, c, `{"execute":"query-status"}`)
	// The mock echoes the id after the other members, as QEMU does.
	want := `{"return":{"status":"running","singlestep":false,"running":true},"id":` + string(c.ID) + `}`
	if string(got) != want {
		t.Errorf("reply %s\nwant  %s", got, want)
	}

	s.handle("nope", answer(`{"error": {"class": "CommandNotFound", "desc": "The command nope has not been found"}}`))
	got, err = m.RunRaw(ctx, []byte(`{"execute":"nope","arguments":{"a":1}}`))
	if err != nil {
		t.Fatalf("an error reply is a reply: %v", err)
	}
	assertCommand(t, s.lastCommand(), `{"execute":"nope","arguments":{"a":1}}`)
	var reply struct {
		Error struct{ Class string } `json:"error"`
	}
	if json.Unmarshal(got, &reply); reply.Error.Class != "CommandNotFound" {
		t.Errorf("reply %s", got)
	}

	for _, bad := range []string{`garbage`, `[1]`, `{"arguments":{}}`, `{"execute":3}`} {
		if _, err := m.RunRaw(ctx, []byte(bad)); !errors.Is(err, ErrNotACommand) {
			t.Errorf("RunRaw(%s) = %v, want ErrNotACommand", bad, err)
		}
	}
	if n := len(s.commands()); n != 2 {
		t.Errorf("mock saw %d commands, want 2 (bad ones are never sent)", n)
	}
	if strings.Contains(s.lastCommand().Raw, "mine") {
		t.Errorf("caller's id was sent: %s", s.lastCommand().Raw)
	}
}
