package qmp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func dialMock(t *testing.T, s *mockQEMU) *Monitor {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := Dial(ctx, s.path)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func ptr[T any](v T) *T { return &v }

func TestDialHandshake(t *testing.T) {
	s := newMockQEMU(t)
	m := dialMock(t, s)
	if got := m.Version().String(); got != "7.2.22" {
		t.Errorf("Version = %q, want 7.2.22", got)
	}
	if m.Version().Package != "Debian test" {
		t.Errorf("Package = %q", m.Version().Package)
	}
	if !reflect.DeepEqual(m.Capabilities(), []string{"oob"}) {
		t.Errorf("Capabilities = %v", m.Capabilities())
	}
}

func TestDialRetriesUntilSocketListens(t *testing.T) {
	path := mockPath(t)
	s := newMockQEMUUnstarted(t, path)
	go func() {
		time.Sleep(150 * time.Millisecond)
		s.start()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := Dial(ctx, path)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer m.Close()
	if _, err := m.QueryStatus(ctx); err != nil {
		t.Fatalf("QueryStatus after retried dial: %v", err)
	}
}

func TestDialGivesUpAtDeadline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Dial(ctx, mockPath(t))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial error = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Dial took %v", d)
	}
}

func TestDialNoGreetingEndsAtDeadline(t *testing.T) {
	s := newMockQEMUUnstarted(t, mockPath(t))
	s.greet = nil
	s.start()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := Dial(ctx, s.path)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial error = %v, want DeadlineExceeded", err)
	}
}

func TestDialNotASocket(t *testing.T) {
	path := mockPath(t)
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// A regular file gives ECONNREFUSED on Linux, which is retried like a
	// stale socket: the deadline ends it.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := Dial(ctx, path); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial on a regular file = %v, want DeadlineExceeded", err)
	}
}

// TestCommandJSON checks every wrapper's exact command and how it decodes
// QEMU 7.2's reply.
func TestCommandJSON(t *testing.T) {
	s := newMockQEMU(t)
	m := dialMock(t, s)
	ctx := testCtx(t)

	cases := []commandCase{
		{name: "cont", call: func() (any, error) { return nil, m.Cont(ctx) }, want: `{"execute":"cont"}`},
		{name: "stop", call: func() (any, error) { return nil, m.Stop(ctx) }, want: `{"execute":"stop"}`},
		{name: "system_powerdown", call: func() (any, error) { return nil, m.SystemPowerdown(ctx) }, want: `{"execute":"system_powerdown"}`},
		{name: "system_reset", call: func() (any, error) { return nil, m.SystemReset(ctx) }, want: `{"execute":"system_reset"}`},
		{
			name:  "query-status",
			reply: `{"return": {"status": "prelaunch", "singlestep": false, "running": false}}`,
			call:  func() (any, error) { return m.QueryStatus(ctx) },
			want:  `{"execute":"query-status"}`,
			check: wantValue(Status{Status: StatusPrelaunch}),
		},
		{
			name:  "query-cpus-fast",
			reply: `{"return": [{"thread-id": 30662, "props": {"core-id": 0, "thread-id": 0, "socket-id": 0}, "qom-path": "/machine/unattached/device[0]", "cpu-index": 0, "target": "x86_64"}]}`,
			call:  func() (any, error) { return m.QueryCPUsFast(ctx) },
			want:  `{"execute":"query-cpus-fast"}`,
			check: wantValue([]CPUInfo{{
				CPUIndex: 0, ThreadID: 30662, QOMPath: "/machine/unattached/device[0]", Target: "x86_64",
				Props: &CPUTopology{CoreID: ptr(0), ThreadID: ptr(0), SocketID: ptr(0)},
			}}),
		},
		{
			name: "balloon",
			call: func() (any, error) { return nil, m.Balloon(ctx, 512<<20) },
			want: `{"execute":"balloon","arguments":{"value":536870912}}`,
		},
		{
			name:  "query-balloon",
			reply: `{"return": {"actual": 1073741824}}`,
			call:  func() (any, error) { return m.QueryBalloon(ctx) },
			want:  `{"execute":"query-balloon"}`,
			check: wantValue(int64(1 << 30)),
		},
		{
			name:  "query-chardev",
			reply: `{"return": [{"frontend-open": true, "filename": "pty:/dev/pts/3", "label": "charserial0"}, {"frontend-open": false, "filename": "unix:/tmp/qs.sock,server=on", "label": "compat_monitor0"}]}`,
			call:  func() (any, error) { return m.QueryChardev(ctx) },
			want:  `{"execute":"query-chardev"}`,
			check: wantValue([]Chardev{
				{Label: "charserial0", Filename: "pty:/dev/pts/3", FrontendOpen: true},
				{Label: "compat_monitor0", Filename: "unix:/tmp/qs.sock,server=on"},
			}),
		},
		{
			name: "query-block",
			reply: `{"return": [{"io-status": "ok", "device": "drive-virtio-disk0", "locked": false, "removable": false,
				"inserted": {"iops_rd": 0, "detect_zeroes": "off", "image": {"virtual-size": 1073741824, "filename": "/var/lib/x.qcow2", "format": "qcow2"},
				"iops_wr": 0, "ro": false, "node-name": "#block123", "backing_file_depth": 0, "drv": "qcow2", "iops": 0, "bps_wr": 0,
				"write_threshold": 0, "encrypted": false, "bps": 0, "bps_rd": 0, "cache": {"no-flush": false, "direct": true, "writeback": true},
				"file": "/var/lib/x.qcow2"}, "qdev": "/machine/peripheral/virtio-disk0/virtio-backend", "type": "unknown"},
				{"device": "ide1-cd0", "locked": false, "removable": true, "tray_open": false, "type": "unknown"}]}`,
			call: func() (any, error) { return m.QueryBlock(ctx) },
			want: `{"execute":"query-block"}`,
			check: func(t *testing.T, got any) {
				b := got.([]BlockInfo)
				if len(b) != 2 {
					t.Fatalf("got %d blocks", len(b))
				}
				if b[0].Device != "drive-virtio-disk0" || b[0].QDev != "/machine/peripheral/virtio-disk0/virtio-backend" || b[0].IOStatus != "ok" {
					t.Errorf("block 0 = %+v", b[0])
				}
				in := b[0].Inserted
				if in == nil || in.File != "/var/lib/x.qcow2" || in.Drv != "qcow2" || in.RO || in.NodeName != "#block123" || in.Cache == nil || !in.Cache.Direct {
					t.Errorf("block 0 inserted = %+v", in)
				}
				if b[1].Inserted != nil || !b[1].Removable || b[1].TrayOpen == nil || *b[1].TrayOpen {
					t.Errorf("block 1 = %+v", b[1])
				}
			},
		},
		{
			name: "query-migrate",
			reply: `{"return": {"expected-downtime": 300, "status": "active", "setup-time": 2, "total-time": 1234, "blocked-reasons": ["x"],
				"cpu-throttle-percentage": 20,
				"ram": {"total": 68829184, "postcopy-requests": 0, "dirty-sync-count": 1, "multifd-bytes": 0, "pages-per-second": 32000,
				"downtime-bytes": 0, "page-size": 4096, "remaining": 1000, "postcopy-bytes": 0, "mbps": 268.5, "transferred": 5000,
				"dirty-sync-missed-zero-copy": 0, "precopy-bytes": 5000, "duplicate": 16000, "dirty-pages-rate": 12, "skipped": 0,
				"normal-bytes": 4096, "normal": 1}}}`,
			call: func() (any, error) { return m.QueryMigrate(ctx) },
			want: `{"execute":"query-migrate"}`,
			check: wantValue(MigrationInfo{
				Status: MigrationStatusActive, ExpectedDowntime: ptr[int64](300), SetupTime: ptr[int64](2), TotalTime: ptr[int64](1234),
				BlockedReasons: []string{"x"}, CPUThrottlePercentage: ptr[int64](20),
				RAM: &MigrationStats{
					Total: 68829184, DirtySyncCount: 1, PagesPerSecond: 32000, PageSize: 4096, Remaining: 1000, MBps: 268.5,
					Transferred: 5000, PrecopyBytes: 5000, Duplicate: 16000, DirtyPagesRate: 12, NormalBytes: 4096, Normal: 1,
				},
			}),
		},
		{
			name:  "query-migrate none",
			reply: `{"return": {}}`,
			call:  func() (any, error) { return m.QueryMigrate(ctx) },
			want:  `{"execute":"query-migrate"}`,
			check: wantValue(MigrationInfo{}),
		},
		{
			name:  "query-migrate-capabilities",
			reply: `{"return": [{"state": false, "capability": "xbzrle"}, {"state": true, "capability": "events"}]}`,
			call:  func() (any, error) { return m.QueryMigrateCapabilities(ctx) },
			want:  `{"execute":"query-migrate-capabilities"}`,
			check: wantValue([]MigrationCapability{{"xbzrle", false}, {"events", true}}),
		},
		{
			name: "migrate-set-capabilities",
			call: func() (any, error) {
				return nil, m.MigrateSetCapabilities(ctx, []MigrationCapability{{"events", true}, {"pause-before-switchover", true}})
			},
			want: `{"execute":"migrate-set-capabilities","arguments":{"capabilities":[{"capability":"events","state":true},{"capability":"pause-before-switchover","state":true}]}}`,
		},
		{
			name: "query-migrate-parameters",
			reply: `{"return": {"cpu-throttle-tailslow": false, "xbzrle-cache-size": 67108864, "cpu-throttle-initial": 20, "announce-max": 550,
				"decompress-threads": 2, "compress-threads": 8, "compress-level": 1, "multifd-channels": 2, "multifd-zstd-level": 1,
				"announce-initial": 50, "block-incremental": false, "compress-wait-thread": true, "downtime-limit": 300, "tls-authz": "",
				"multifd-compression": "none", "announce-rounds": 5, "announce-step": 100, "tls-creds": "", "multifd-zlib-level": 1,
				"max-cpu-throttle": 99, "max-postcopy-bandwidth": 0, "tls-hostname": "", "throttle-trigger-threshold": 50,
				"max-bandwidth": 134217728, "x-checkpoint-delay": 20000, "cpu-throttle-increment": 10}}`,
			call: func() (any, error) { return m.QueryMigrateParameters(ctx) },
			want: `{"execute":"query-migrate-parameters"}`,
			check: wantValue(MigrationParameters{
				CPUThrottleTailslow: ptr(false), XBZRLECacheSize: ptr[int64](67108864), CPUThrottleInitial: ptr[int64](20),
				AnnounceMax: ptr[int64](550), DecompressThreads: ptr[int64](2), CompressThreads: ptr[int64](8), CompressLevel: ptr[int64](1),
				MultifdChannels: ptr[int64](2), MultifdZstdLevel: ptr[int64](1), AnnounceInitial: ptr[int64](50), BlockIncremental: ptr(false),
				CompressWaitThread: ptr(true), DowntimeLimit: ptr[int64](300), TLSAuthz: ptr(""), MultifdCompression: ptr("none"),
				AnnounceRounds: ptr[int64](5), AnnounceStep: ptr[int64](100), TLSCreds: ptr(""), MultifdZlibLevel: ptr[int64](1),
				MaxCPUThrottle: ptr[int64](99), MaxPostcopyBandwidth: ptr[int64](0), TLSHostname: ptr(""), ThrottleTriggerThreshold: ptr[int64](50),
				MaxBandwidth: ptr[int64](134217728), XCheckpointDelay: ptr[int64](20000), CPUThrottleIncrement: ptr[int64](10),
			}),
		},
		{
			name: "migrate-set-parameters partial",
			call: func() (any, error) {
				return nil, m.MigrateSetParameters(ctx, MigrationParameters{
					MaxBandwidth: ptr[int64](1 << 30), DowntimeLimit: ptr[int64](500), TLSCreds: ptr("objlibvirt_migrate_tls0"),
					TLSHostname: ptr(""), BlockIncremental: ptr(false), MultifdChannels: ptr[int64](4),
				})
			},
			want: `{"execute":"migrate-set-parameters","arguments":{"max-bandwidth":1073741824,"downtime-limit":500,"tls-creds":"objlibvirt_migrate_tls0","tls-hostname":"","block-incremental":false,"multifd-channels":4}}`,
		},
		{
			name: "migrate-set-parameters bitmap mapping reset",
			call: func() (any, error) {
				return nil, m.MigrateSetParameters(ctx, MigrationParameters{BlockBitmapMapping: &[]BitmapMigrationNodeAlias{}})
			},
			want: `{"execute":"migrate-set-parameters","arguments":{"block-bitmap-mapping":[]}}`,
		},
		{
			name: "migrate",
			call: func() (any, error) { return nil, m.Migrate(ctx, "fd:migrate") },
			want: `{"execute":"migrate","arguments":{"uri":"fd:migrate"}}`,
		},
		{
			name: "migrate-incoming",
			call: func() (any, error) { return nil, m.MigrateIncoming(ctx, "tcp:[::]:49152") },
			want: `{"execute":"migrate-incoming","arguments":{"uri":"tcp:[::]:49152"}}`,
		},
		{
			name: "migrate_cancel",
			call: func() (any, error) { return nil, m.MigrateCancel(ctx) },
			want: `{"execute":"migrate_cancel"}`,
		},
		{
			name: "migrate-continue",
			call: func() (any, error) { return nil, m.MigrateContinue(ctx, MigrationStatusPreSwitchover) },
			want: `{"execute":"migrate-continue","arguments":{"state":"pre-switchover"}}`,
		},
		{
			name: "migrate-start-postcopy",
			call: func() (any, error) { return nil, m.MigrateStartPostcopy(ctx) },
			want: `{"execute":"migrate-start-postcopy"}`,
		},
		{
			name: "migrate-pause",
			call: func() (any, error) { return nil, m.MigratePause(ctx) },
			want: `{"exec-oob":"migrate-pause"}`,
		},
		{
			name: "migrate-recover",
			call: func() (any, error) { return nil, m.MigrateRecover(ctx, "tcp:127.0.0.3:49152") },
			want: `{"exec-oob":"migrate-recover","arguments":{"uri":"tcp:127.0.0.3:49152"}}`,
		},
		{
			name: "migrate resume",
			call: func() (any, error) { return nil, m.MigrateResume(ctx, "tcp:127.0.0.3:49152") },
			want: `{"execute":"migrate","arguments":{"uri":"tcp:127.0.0.3:49152","resume":true}}`,
		},
		{
			name: "closefd",
			call: func() (any, error) { return nil, m.CloseFD(ctx, "migrate") },
			want: `{"execute":"closefd","arguments":{"fdname":"migrate"}}`,
		},
		{
			name:  "run generic",
			reply: `{"return": {"name": "vm1"}}`,
			call: func() (any, error) {
				var out struct {
					Name string `json:"name"`
				}
				err := m.Run(ctx, "query-name", nil, &out)
				return out.Name, err
			},
			want:  `{"execute":"query-name"}`,
			check: wantValue("vm1"),
		},
	}
	runCommandCases(t, s, cases)
}

// commandCase is one wrapper's check: the reply the mock gives, the
// call, the command JSON it must send and what it must return.
type commandCase struct {
	name  string
	reply string // raw reply, default {"return": {}}
	call  func() (any, error)
	want  string // command JSON
	check func(t *testing.T, got any)
}

// wantValue checks a decoded result.
func wantValue(want any) func(*testing.T, any) {
	return func(t *testing.T, got any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("result = %#v\nwant %#v", got, want)
		}
	}
}

func runCommandCases(t *testing.T, s *mockQEMU, cases []commandCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var cmd string
			if err := jsonField(c.want, "execute", &cmd); err != nil {
				if jsonField(c.want, "exec-oob", &cmd) != nil {
					t.Fatal(err)
				}
			}
			rep := c.reply
			if rep == "" {
				rep = `{"return": {}}`
			}
			s.handle(cmd, answer(rep))
			got, err := c.call()
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			assertCommand(t, s.lastCommand(), c.want)
			if c.check != nil {
				c.check(t, got)
			}
		})
	}
}

func TestChardevPTY(t *testing.T) {
	if p, ok := (Chardev{Filename: "pty:/dev/pts/3"}).PTY(); !ok || p != "/dev/pts/3" {
		t.Errorf("PTY = %q, %v", p, ok)
	}
	if _, ok := (Chardev{Filename: "unix:/x,server=on"}).PTY(); ok {
		t.Error("unix chardev reported as pty")
	}
}

func TestGetFDPassesDescriptor(t *testing.T) {
	s := newMockQEMU(t)
	m := dialMock(t, s)
	ctx := testCtx(t)

	f, err := os.CreateTemp(t.TempDir(), "fd")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("migration stream"); err != nil {
		t.Fatal(err)
	}
	if err := m.GetFD(ctx, "migrate", f); err != nil {
		t.Fatalf("GetFD: %v", err)
	}
	c := s.lastCommand()
	assertCommand(t, c, `{"execute":"getfd","arguments":{"fdname":"migrate"}}`)
	if len(c.Files) != 1 {
		t.Fatalf("mock received %d descriptors, want 1", len(c.Files))
	}
	got, err := io.ReadAll(io.NewSectionReader(c.Files[0], 0, 100))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "migration stream" {
		t.Errorf("received descriptor reads %q", got)
	}
	// The caller's file is still theirs.
	if _, err := f.Stat(); err != nil {
		t.Errorf("caller's file unusable after GetFD: %v", err)
	}
}

func TestCommandError(t *testing.T) {
	s := newMockQEMU(t)
	m := dialMock(t, s)
	ctx := testCtx(t)

	s.handle("migrate-continue", answer(`{"error": {"class": "GenericError", "desc": "Migration not in expected state: none"}}`))
	err := m.MigrateContinue(ctx, "pre-switchover")
	var ce *CommandError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T) is not a *CommandError", err, err)
	}
	if ce.Command != "migrate-continue" || ce.Desc != "Migration not in expected state: none" || ce.Class != ClassGenericError {
		t.Errorf("CommandError = %+v", ce)
	}
	if errors.Is(err, ErrDisconnected) {
		t.Error("a QMP error reply must not look like a disconnect")
	}
	if want := "qmp migrate-continue: GenericError: Migration not in expected state: none"; err.Error() != want {
		t.Errorf("message = %q, want %q", err.Error(), want)
	}

	s.handle("nosuch", answer(`{"error": {"class": "CommandNotFound", "desc": "The command nosuch has not been found"}}`))
	err = m.Run(ctx, "nosuch", nil, nil)
	if !IsCommandNotFound(err) {
		t.Errorf("IsCommandNotFound(%v) = false", err)
	}

	s.handle("query-balloon", answer(`{"error": {"class": "DeviceNotActive", "desc": "No balloon device has been activated"}}`))
	_, err = m.QueryBalloon(ctx)
	if !errors.As(err, &ce) || ce.Class != ClassDeviceNotActive {
		t.Errorf("query-balloon error = %v, want DeviceNotActive", err)
	}

	s.handle("device_del", answer(`{"error": {"class": "DeviceNotFound", "desc": "Device 'x' not found"}}`))
	err = m.Run(ctx, "device_del", map[string]string{"id": "x"}, nil)
	if !errors.As(err, &ce) || ce.Class != ClassDeviceNotFound {
		t.Errorf("device_del error = %v, want DeviceNotFound", err)
	}

	// The monitor is still usable after error replies.
	if _, err := m.QueryStatus(ctx); err != nil {
		t.Errorf("QueryStatus after errors: %v", err)
	}
}

func TestDecodeErrorIsNotDisconnect(t *testing.T) {
	s := newMockQEMU(t)
	m := dialMock(t, s)
	s.handle("query-status", answer(`{"return": {"status": 5}}`))
	_, err := m.QueryStatus(testCtx(t))
	if err == nil || errors.Is(err, ErrDisconnected) {
		t.Fatalf("error = %v, want a decode error", err)
	}
}

func TestDisconnectDuringCommand(t *testing.T) {
	s := newMockQEMU(t)
	m := dialMock(t, s)
	ctx := testCtx(t)
	sub := m.Subscribe(ctx)
	events := m.Events()

	s.handle("cont", func(s *mockQEMU, _ mockCmd) string {
		s.drop()
		return ""
	})
	err := m.Cont(ctx)
	if !errors.Is(err, ErrDisconnected) {
		t.Fatalf("Cont error = %v, want ErrDisconnected", err)
	}
	select {
	case <-m.Disconnected():
	case <-ctx.Done():
		t.Fatal("Disconnected not closed")
	}
	for _, ch := range []<-chan Event{sub, events} {
		if _, err := WaitEvent(ctx, ch, nil); !errors.Is(err, ErrDisconnected) {
			t.Errorf("event channel: WaitEvent = %v, want ErrDisconnected", err)
		}
	}
	if err := m.Stop(ctx); !errors.Is(err, ErrDisconnected) {
		t.Errorf("Stop after disconnect = %v, want ErrDisconnected", err)
	}
	if ch := m.Subscribe(ctx); !isClosed(ch) {
		t.Error("Subscribe after disconnect returned an open channel")
	}
	if err := m.Close(); err != nil {
		t.Errorf("Close after disconnect: %v", err)
	}
}

func TestQuitToleratesDisconnect(t *testing.T) {
	s := newMockQEMU(t)
	m := dialMock(t, s)
	ctx := testCtx(t)
	sub := m.Subscribe(ctx)
	s.handle("quit", func(s *mockQEMU, _ mockCmd) string {
		s.emit(EventShutdown, map[string]any{"guest": false, "reason": "host-qmp-quit"}, 1, 2)
		s.drop()
		return ""
	})
	if err := m.Quit(ctx); err != nil {
		t.Fatalf("Quit: %v", err)
	}
	// Events before the hang-up are still delivered, then the close.
	e, err := WaitEvent(ctx, sub, EventIs(EventShutdown))
	if err != nil {
		t.Fatalf("SHUTDOWN: %v", err)
	}
	if e.DataBool("guest") || e.DataString("reason") != "host-qmp-quit" {
		t.Errorf("SHUTDOWN data = %v", e.Data)
	}
	if _, err := WaitEvent(ctx, sub, nil); !errors.Is(err, ErrDisconnected) {
		t.Errorf("after SHUTDOWN: %v, want ErrDisconnected", err)
	}
}

func TestCloseClosesEverything(t *testing.T) {
	s := newMockQEMU(t)
	m := dialMock(t, s)
	ctx := testCtx(t)
	sub := m.Subscribe(context.Background())
	events := m.Events()
	if err := m.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if !isClosed(m.Disconnected()) {
		t.Error("Disconnected open after Close")
	}
	for _, ch := range []<-chan Event{sub, events} {
		if _, err := WaitEvent(ctx, ch, nil); !errors.Is(err, ErrDisconnected) {
			t.Errorf("WaitEvent after Close = %v", err)
		}
	}
	if _, err := m.QueryStatus(ctx); !errors.Is(err, ErrDisconnected) {
		t.Errorf("QueryStatus after Close = %v, want ErrDisconnected", err)
	}
}

func TestConcurrentCalls(t *testing.T) {
	s := newMockQEMU(t)
	m := dialMock(t, s)
	ctx := testCtx(t)
	// Echo the argument back so that a reply given to the wrong caller
	// shows.
	s.handle("echo", func(_ *mockQEMU, c mockCmd) string {
		return `{"return": ` + string(c.Args) + `}`
	})
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Events interleaved with replies must not confuse anything.
			s.emit("RTC_CHANGE", map[string]any{"offset": i}, 1, 0)
			var out struct{ N int }
			if err := m.Run(ctx, "echo", struct{ N int }{i}, &out); err != nil {
				errs <- err
				return
			}
			if out.N != i {
				errs <- fmt.Errorf("call %d got reply %d", i, out.N)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestContextEndsWhileWaitingForReply(t *testing.T) {
	s := newMockQEMU(t)
	m := dialMock(t, s)

	release := make(chan struct{})
	s.handle("stop", func(s *mockQEMU, c mockCmd) string {
		// Answer late, from another goroutine, as a busy QEMU would.
		go func() {
			<-release
			s.write(withID(`{"return": {"late": true}}`, c.ID))
		}()
		return ""
	})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := m.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop = %v, want DeadlineExceeded", err)
	}

	// A command whose context ends while it queues behind the stuck one is
	// never sent.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if err := m.Cont(ctx2); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Cont = %v, want DeadlineExceeded", err)
	}

	// The next command must get its own reply, not the late one.
	close(release)
	s.handle("query-status", answer(`{"return": {"status": "paused", "singlestep": false, "running": false}}`))
	st, err := m.QueryStatus(testCtx(t))
	if err != nil {
		t.Fatalf("QueryStatus: %v", err)
	}
	if st.Status != StatusPaused {
		t.Errorf("QueryStatus = %+v, got someone else's reply", st)
	}
	var sent []string
	for _, c := range s.commands() {
		sent = append(sent, c.Execute)
	}
	if !reflect.DeepEqual(sent, []string{"stop", "query-status"}) {
		t.Errorf("commands sent = %v, want [stop query-status]", sent)
	}

	// An already expired context sends nothing.
	if err := m.Cont(ctx2); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Cont with expired ctx = %v", err)
	}
}

func isClosed[T any](ch <-chan T) bool {
	select {
	case _, ok := <-ch:
		return !ok
	case <-time.After(2 * time.Second):
		return false
	}
}

func jsonField(doc, key string, out any) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(doc), &m); err != nil {
		return err
	}
	return json.Unmarshal(m[key], out)
}

// TestEventBeforeCapabilitiesReply: QEMU may emit an event between
// qmp_capabilities and its reply; it must be delivered as an event and not
// shift the replies of later commands.
func TestEventBeforeCapabilitiesReply(t *testing.T) {
	s := newMockQEMUUnstarted(t, mockPath(t))
	s.capsEvent = `{"timestamp": {"seconds": 5, "microseconds": 6}, "event": "RTC_CHANGE", "data": {"offset": 1}}`
	s.start()
	m := dialMock(t, s)
	ctx := testCtx(t)
	s.handle("query-status", answer(`{"return": {"status": "running", "singlestep": false, "running": true}}`))
	st, err := m.QueryStatus(ctx)
	if err != nil || st.Status != StatusRunning {
		t.Fatalf("QueryStatus = %+v, %v", st, err)
	}
	e, err := WaitEvent(ctx, m.Events(), nil)
	if err != nil || e.Name != "RTC_CHANGE" || !e.Time.Equal(time.Unix(5, 6000)) {
		t.Fatalf("first event = %+v, %v", e, err)
	}
}

// TestLongReply: replies beyond 64 KiB (query-qmp-schema is ~200 KiB) work.
func TestLongReply(t *testing.T) {
	s := newMockQEMU(t)
	m := dialMock(t, s)
	big := strings.Repeat("x", 300<<10)
	s.handle("query-qmp-schema", answer(`{"return": [{"name": "`+big+`"}]}`))
	var out []struct{ Name string }
	if err := m.Run(testCtx(t), "query-qmp-schema", nil, &out); err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || out[0].Name != big {
		t.Fatal("long reply garbled")
	}
}

// TestStrayReplyIgnored: a reply not carrying the id of the command in
// flight is not taken as its answer.
func TestStrayReplyIgnored(t *testing.T) {
	s := newMockQEMU(t)
	m := dialMock(t, s)
	s.handle("query-status", func(s *mockQEMU, c mockCmd) string {
		s.write(`{"return": {"status": "stray", "running": false, "singlestep": false}, "id": 999999}`)
		s.write(`{"return": {"status": "stray-no-id", "running": false, "singlestep": false}}`)
		return `{"return": {"status": "paused", "running": false, "singlestep": false}}`
	})
	st, err := m.QueryStatus(testCtx(t))
	if err != nil || st.Status != StatusPaused {
		t.Fatalf("QueryStatus = %+v, %v", st, err)
	}
}

func TestMalformedLineSkipped(t *testing.T) {
	s := newMockQEMU(t)
	m := dialMock(t, s)
	s.handle("cont", func(s *mockQEMU, _ mockCmd) string {
		s.write(`this is not json`)
		return `{"return": {}}`
	})
	if err := m.Cont(testCtx(t)); err != nil {
		t.Fatal(err)
	}
}
