package qmp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// BlockStats is one entry of query-blockstats: the I/O counters of one
// block backend (BlockStats in QAPI).
type BlockStats struct {
	// Device is the legacy drive name ("" with -blockdev).
	Device string `json:"device"`
	// NodeName is the backend's root node, e.g. "libvirt-1-format".
	NodeName string `json:"node-name,omitempty"`
	// QDev is the attached device's id or QOM path, e.g.
	// "/machine/peripheral/virtio-disk0/virtio-backend".
	QDev  string           `json:"qdev,omitempty"`
	Stats BlockDeviceStats `json:"stats"`
	// Parent holds the counters of the node below (the storage node).
	Parent *BlockStatsParent `json:"parent,omitempty"`
}

// BlockStatsParent is the "parent" member of a BlockStats entry.
type BlockStatsParent struct {
	NodeName string           `json:"node-name,omitempty"`
	Stats    BlockDeviceStats `json:"stats"`
}

// BlockDeviceStats is the part of QAPI's BlockDeviceStats libvirt reads.
type BlockDeviceStats struct {
	RdBytes          int64 `json:"rd_bytes"`
	WrBytes          int64 `json:"wr_bytes"`
	RdOperations     int64 `json:"rd_operations"`
	WrOperations     int64 `json:"wr_operations"`
	FlushOperations  int64 `json:"flush_operations"`
	RdTotalTimeNs    int64 `json:"rd_total_time_ns"`
	WrTotalTimeNs    int64 `json:"wr_total_time_ns"`
	FlushTotalTimeNs int64 `json:"flush_total_time_ns"`
	// WrHighestOffset is the end of the furthest write so far.
	WrHighestOffset int64 `json:"wr_highest_offset"`
}

// QueryBlockstats returns the I/O counters of every block backend
// ("query-blockstats", without the per-node list, as libvirt asks).
func (m *Monitor) QueryBlockstats(ctx context.Context) ([]BlockStats, error) {
	var out []BlockStats
	err := m.Run(ctx, "query-blockstats", struct {
		QueryNodes bool `json:"query-nodes"`
	}{false}, &out)
	return out, err
}

// QomGet reads a QOM property ("qom-get") into result.
func (m *Monitor) QomGet(ctx context.Context, path, property string, result any) error {
	return m.Run(ctx, "qom-get", struct {
		Path     string `json:"path"`
		Property string `json:"property"`
	}{path, property}, result)
}

// QomSet writes a QOM property ("qom-set").
func (m *Monitor) QomSet(ctx context.Context, path, property string, value any) error {
	return m.Run(ctx, "qom-set", struct {
		Path     string `json:"path"`
		Property string `json:"property"`
		Value    any    `json:"value"`
	}{path, property, value}, nil)
}

// GuestStats is the virtio balloon's "guest-stats" property: the memory
// statistics the guest driver last reported.
type GuestStats struct {
	// Stats maps QEMU's names ("stat-swap-in", "stat-free-memory", ...) to
	// values; QEMU reports a statistic the guest never sent as 2^64-1.
	Stats map[string]uint64 `json:"stats"`
	// LastUpdate is when the guest last reported, in seconds since the
	// epoch; 0 if it never has.
	LastUpdate int64 `json:"last-update"`
}

// StatUnset is the value QEMU gives a balloon statistic the guest has not
// reported.
const StatUnset = ^uint64(0)

// BalloonGuestStats reads the balloon device's guest statistics; path is
// the device's QOM path (/machine/peripheral/balloon0).
func (m *Monitor) BalloonGuestStats(ctx context.Context, path string) (GuestStats, error) {
	var gs GuestStats
	err := m.QomGet(ctx, path, "guest-stats", &gs)
	return gs, err
}

// SetBalloonStatsPeriod sets how often, in seconds, the guest is asked for
// memory statistics (0 stops polling).
func (m *Monitor) SetBalloonStatsPeriod(ctx context.Context, path string, seconds int) error {
	return m.QomSet(ctx, path, "guest-stats-polling-interval", seconds)
}

// HumanMonitorCommand runs a human monitor (HMP) command line
// ("human-monitor-command") and returns its output as QEMU prints it.
func (m *Monitor) HumanMonitorCommand(ctx context.Context, commandLine string) (string, error) {
	var out string
	err := m.Run(ctx, "human-monitor-command", struct {
		CommandLine string `json:"command-line"`
	}{commandLine}, &out)
	return out, err
}

// ErrNotACommand reports a RunRaw command that is not a JSON object with
// an "execute" member.
var ErrNotACommand = errors.New("not a QMP command")

// RunRaw sends a caller-written QMP command (a JSON object with "execute"
// and perhaps "arguments"), with the monitor's own "id" put in, and returns
// QEMU's reply as QEMU wrote it, without insignificant whitespace. An
// error reply is a reply here, not an error: the error result is only for
// a command that cannot be sent or a reply that does not come.
func (m *Monitor) RunRaw(ctx context.Context, cmd []byte) ([]byte, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(cmd, &obj); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotACommand, err)
	}
	var execute string
	if err := json.Unmarshal(obj["execute"], &execute); err != nil || execute == "" {
		return nil, fmt.Errorf("%w: no \"execute\" member", ErrNotACommand)
	}
	msg, err := m.roundTrip(ctx, execute, func(id uint64) ([]byte, error) {
		obj["id"] = json.RawMessage(fmt.Sprint(id))
		return json.Marshal(obj)
	}, nil)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Compact(&out, msg.raw); err != nil {
		return nil, fmt.Errorf("qmp %s: reply: %w", execute, err)
	}
	return out.Bytes(), nil
}
