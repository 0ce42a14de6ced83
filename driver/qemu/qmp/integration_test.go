package qmp

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/govirtd/govirtd/test/deps"
)

// TestRealQEMU drives a real QEMU 7.2 through the monitor lifecycle.
func TestRealQEMU(t *testing.T) {
	if testing.Short() {
		t.Skip("starts QEMU")
	}
	qemuBinary := deps.Command(t, "qemu-system-x86_64")
	dir := t.TempDir()
	sock := filepath.Join(dir, "qmp.sock")
	cmd := exec.Command(qemuBinary,
		"-S", "-machine", "pc", "-accel", "tcg", "-m", "64", "-nodefaults", "-display", "none",
		"-qmp", "unix:"+sock+",server=on,wait=off",
		"-chardev", "pty,id=charserial0",
	)
	cmd.Stdout = os.Stderr
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start QEMU: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			t.Error("QEMU did not exit after SIGKILL")
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Dial right away: the socket may not exist yet, Dial retries.
	m, err := Dial(ctx, sock)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer m.Close()
	if v := m.Version(); v.Major < 7 {
		t.Errorf("QEMU version %v", v)
	}
	events := m.Events()

	st, err := m.QueryStatus(ctx)
	if err != nil {
		t.Fatalf("QueryStatus: %v", err)
	}
	if st.Running || (st.Status != StatusPrelaunch && st.Status != StatusPaused) {
		t.Errorf("initial status %+v, want prelaunch or paused", st)
	}

	cpus, err := m.QueryCPUsFast(ctx)
	if err != nil {
		t.Fatalf("QueryCPUsFast: %v", err)
	}
	if len(cpus) != 1 || cpus[0].ThreadID == 0 || cpus[0].Target != "x86_64" {
		t.Errorf("QueryCPUsFast = %+v", cpus)
	}

	if err := m.Cont(ctx); err != nil {
		t.Fatalf("Cont: %v", err)
	}
	if _, err := WaitEvent(ctx, events, EventIs(EventResume)); err != nil {
		t.Fatalf("RESUME: %v", err)
	}
	if st, err := m.QueryStatus(ctx); err != nil || !st.Running || st.Status != StatusRunning {
		t.Errorf("after cont: %+v, %v", st, err)
	}

	if err := m.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if _, err := WaitEvent(ctx, events, EventIs(EventStop)); err != nil {
		t.Fatalf("STOP: %v", err)
	}
	if st, err := m.QueryStatus(ctx); err != nil || st.Running || st.Status != StatusPaused {
		t.Errorf("after stop: %+v, %v", st, err)
	}

	// Migration parameters: read, change, read back, restore everything
	// that was read (libvirt's save/restore pattern).
	orig, err := m.QueryMigrateParameters(ctx)
	if err != nil {
		t.Fatalf("QueryMigrateParameters: %v", err)
	}
	if orig.MaxBandwidth == nil || orig.DowntimeLimit == nil || orig.TLSCreds == nil {
		t.Fatalf("QueryMigrateParameters lacks members: %+v", orig)
	}
	set := MigrationParameters{
		MaxBandwidth:    ptr[int64](1 << 30),
		DowntimeLimit:   ptr[int64](500),
		XBZRLECacheSize: ptr[int64](32 << 20),
	}
	if err := m.MigrateSetParameters(ctx, set); err != nil {
		t.Fatalf("MigrateSetParameters: %v", err)
	}
	got, err := m.QueryMigrateParameters(ctx)
	if err != nil {
		t.Fatalf("QueryMigrateParameters: %v", err)
	}
	if *got.MaxBandwidth != 1<<30 || *got.DowntimeLimit != 500 || *got.XBZRLECacheSize != 32<<20 {
		t.Errorf("read back max-bandwidth=%d downtime-limit=%d xbzrle-cache-size=%d",
			*got.MaxBandwidth, *got.DowntimeLimit, *got.XBZRLECacheSize)
	}
	if *got.CompressThreads != *orig.CompressThreads {
		t.Errorf("an unset parameter changed: compress-threads %d -> %d", *orig.CompressThreads, *got.CompressThreads)
	}
	if err := m.MigrateSetParameters(ctx, orig); err != nil {
		t.Fatalf("restoring the full parameter set: %v", err)
	}
	restored, err := m.QueryMigrateParameters(ctx)
	if err != nil {
		t.Fatalf("QueryMigrateParameters: %v", err)
	}
	if mustJSON(restored) != mustJSON(orig) {
		t.Errorf("round trip differs\n got: %s\nwant: %s", mustJSON(restored), mustJSON(orig))
	}

	caps, err := m.QueryMigrateCapabilities(ctx)
	if err != nil || len(caps) == 0 {
		t.Fatalf("QueryMigrateCapabilities: %v, %v", caps, err)
	}
	if err := m.MigrateSetCapabilities(ctx, []MigrationCapability{{"events", true}}); err != nil {
		t.Fatalf("MigrateSetCapabilities: %v", err)
	}
	if info, err := m.QueryMigrate(ctx); err != nil || info.Status != "" {
		t.Errorf("QueryMigrate before any migration: %+v, %v", info, err)
	}
	err = m.MigrateContinue(ctx, MigrationStatusPreSwitchover)
	var ce *CommandError
	if !errors.As(err, &ce) {
		t.Errorf("MigrateContinue without migration = %v, want a CommandError", err)
	}
	if err := m.Run(ctx, "no-such-command", nil, nil); !IsCommandNotFound(err) {
		t.Errorf("unknown command = %v, want CommandNotFound", err)
	}
	if _, err := m.QueryBalloon(ctx); !errors.As(err, &ce) || ce.Class != ClassDeviceNotActive {
		t.Errorf("QueryBalloon without balloon = %v, want DeviceNotActive", err)
	}

	devs, err := m.QueryChardev(ctx)
	if err != nil {
		t.Fatalf("QueryChardev: %v", err)
	}
	var pty string
	for _, d := range devs {
		if d.Label == "charserial0" {
			pty, _ = d.PTY()
		}
	}
	if pty == "" {
		t.Errorf("no pty path in %+v", devs)
	} else if _, err := os.Stat(pty); err != nil {
		t.Errorf("pty %s: %v", pty, err)
	}

	blocks, err := m.QueryBlock(ctx)
	if err != nil {
		t.Fatalf("QueryBlock: %v", err)
	}
	_ = blocks // -nodefaults: no drives

	// GetFD/CloseFD with a real descriptor.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if err := m.GetFD(ctx, "testfd", w); err != nil {
		t.Fatalf("GetFD: %v", err)
	}
	if err := m.CloseFD(ctx, "testfd"); err != nil {
		t.Fatalf("CloseFD: %v", err)
	}
	if err := m.CloseFD(ctx, "testfd"); !errors.As(err, &ce) {
		t.Errorf("second CloseFD = %v, want a CommandError", err)
	}

	sub := m.Subscribe(ctx)
	if err := m.Quit(ctx); err != nil {
		t.Fatalf("Quit: %v", err)
	}
	e, err := WaitEvent(ctx, sub, EventIs(EventShutdown))
	if err != nil {
		t.Fatalf("SHUTDOWN: %v", err)
	}
	if e.DataBool("guest") || e.DataString("reason") != "host-qmp-quit" {
		t.Errorf("SHUTDOWN data = %v", e.Data)
	}
	select {
	case <-m.Disconnected():
	case <-ctx.Done():
		t.Fatal("Disconnected not closed after quit")
	}
	if _, err := WaitEvent(ctx, events, EventIs("never")); !errors.Is(err, ErrDisconnected) {
		t.Errorf("Events after quit: %v, want closed", err)
	}
	if err := m.Cont(ctx); !errors.Is(err, ErrDisconnected) {
		t.Errorf("Cont after quit = %v, want ErrDisconnected", err)
	}
	select {
	case err := <-exited:
		exited <- err // for the cleanup
		if err != nil {
			t.Errorf("QEMU exit: %v", err)
		}
	case <-ctx.Done():
		t.Error("QEMU did not exit after quit")
	}
}
