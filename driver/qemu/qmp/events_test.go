package qmp

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestEventDecoding(t *testing.T) {
	s := newMockQEMU(t)
	m := dialMock(t, s)
	ctx := testCtx(t)
	events := m.Events()

	s.emit(EventMigrationPass, map[string]any{"pass": 3}, 1795682067, 805749)
	s.emit(EventResume, nil, 1795682068, 1)
	e, err := WaitEvent(ctx, events, nil)
	if err != nil {
		t.Fatal(err)
	}
	if e.Name != EventMigrationPass || e.DataInt("pass") != 3 {
		t.Errorf("event = %+v", e)
	}
	if want := time.Unix(1795682067, 805749000); !e.Time.Equal(want) {
		t.Errorf("Time = %v, want %v", e.Time, want)
	}
	e, err = WaitEvent(ctx, events, nil)
	if err != nil {
		t.Fatal(err)
	}
	if e.Name != EventResume || e.Data != nil {
		t.Errorf("event = %+v", e)
	}
	if m.Events() != events {
		t.Error("Events returned a different channel on the second call")
	}
}

// TestEventsSeesEventsBeforeFirstCall: the lifetime channel starts at Dial,
// not at the first Events call.
func TestEventsSeesEventsBeforeFirstCall(t *testing.T) {
	s := newMockQEMU(t)
	m := dialMock(t, s)
	ctx := testCtx(t)
	s.emit(EventStop, nil, 1, 0)
	// A round trip after the event guarantees the reader has queued it.
	if _, err := m.QueryStatus(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := WaitEvent(ctx, m.Events(), EventIs(EventStop)); err != nil {
		t.Fatalf("STOP emitted before Events(): %v", err)
	}
}

func TestSubscriberFanOut(t *testing.T) {
	s := newMockQEMU(t)
	m := dialMock(t, s)
	ctx := testCtx(t)

	cctx, cancelOne := context.WithCancel(ctx)
	subs := []<-chan Event{m.Events(), m.Subscribe(ctx), m.Subscribe(ctx), m.Subscribe(cctx)}

	const n = 200
	for i := range n {
		s.emit(EventMigrationPass, map[string]any{"pass": i}, 1, 0)
	}
	for k, sub := range subs {
		for i := range n {
			e, err := WaitEvent(ctx, sub, nil)
			if err != nil {
				t.Fatalf("subscriber %d event %d: %v", k, i, err)
			}
			if got := e.DataInt("pass"); got != int64(i) {
				t.Fatalf("subscriber %d: event %d has pass %d (out of order or lost)", k, i, got)
			}
		}
	}

	// A cancelled subscription closes; the others carry on.
	cancelOne()
	if !isClosed(subs[3]) {
		t.Fatal("cancelled subscription not closed")
	}
	s.emit(EventStop, nil, 1, 0)
	for k, sub := range subs[:3] {
		if _, err := WaitEvent(ctx, sub, EventIs(EventStop)); err != nil {
			t.Errorf("subscriber %d after a cancel: %v", k, err)
		}
	}
	m.mu.Lock()
	nsubs := len(m.subs)
	m.mu.Unlock()
	if nsubs != 3 {
		t.Errorf("%d subscribers registered, want 3 (cancelled one not removed)", nsubs)
	}
}

// TestSubscribeBeforeCommand is the migration pattern: subscribe, send the
// command, wait; QEMU emits the event before its reply.
func TestSubscribeBeforeCommand(t *testing.T) {
	s := newMockQEMU(t)
	m := dialMock(t, s)
	ctx := testCtx(t)

	s.handle("migrate", func(s *mockQEMU, _ mockCmd) string {
		s.emit(EventMigration, map[string]any{"status": "setup"}, 1, 0)
		go func() {
			time.Sleep(20 * time.Millisecond)
			s.emit(EventMigrationPass, map[string]any{"pass": 1}, 1, 1)
			s.emit(EventMigration, map[string]any{"status": "active"}, 1, 2)
			s.emit(EventMigration, map[string]any{"status": "completed"}, 1, 3)
		}()
		return `{"return": {}}`
	})

	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sub := m.Subscribe(wctx)
	if err := m.Migrate(ctx, "unix:/x"); err != nil {
		t.Fatal(err)
	}
	if _, err := WaitEvent(ctx, sub, MigrationStatusIs(MigrationStatusSetup)); err != nil {
		t.Fatalf("setup: %v", err)
	}
	e, err := WaitEvent(ctx, sub, MigrationStatusIs(MigrationStatusCompleted, MigrationStatusFailed, MigrationStatusCancelled))
	if err != nil {
		t.Fatalf("terminal state: %v", err)
	}
	if e.DataString("status") != MigrationStatusCompleted {
		t.Errorf("terminal = %v", e.Data)
	}
}

// TestSlowConsumerDoesNotBlock: nobody reads a subscription while many
// events arrive; commands still work and nothing is lost.
func TestSlowConsumerDoesNotBlock(t *testing.T) {
	s := newMockQEMU(t)
	m := dialMock(t, s)
	ctx := testCtx(t)
	sub := m.Subscribe(ctx)
	events := m.Events()

	const n = 5000
	for i := range n {
		s.emit(EventMigrationPass, map[string]any{"pass": i}, 1, 0)
	}
	if _, err := m.QueryStatus(ctx); err != nil {
		t.Fatalf("command behind an unread event flood: %v", err)
	}
	for _, ch := range []<-chan Event{sub, events} {
		for i := range n {
			e, err := WaitEvent(ctx, ch, nil)
			if err != nil {
				t.Fatalf("event %d: %v", i, err)
			}
			if e.DataInt("pass") != int64(i) {
				t.Fatalf("event %d has pass %d", i, e.DataInt("pass"))
			}
		}
	}
}

func TestUnclaimedEventsBacklogIsBounded(t *testing.T) {
	s := newMockQEMU(t)
	m := dialMock(t, s)
	ctx := testCtx(t)
	const n = unclaimedBacklog + subscriberBuffer + 500
	for i := range n {
		s.emit(EventMigrationPass, map[string]any{"pass": i}, 1, 0)
	}
	if _, err := m.QueryStatus(ctx); err != nil {
		t.Fatal(err)
	}
	// Let the reader and the lifetime goroutine settle.
	deadline := time.Now().Add(2 * time.Second)
	for {
		m.lifetime.mu.Lock()
		q := len(m.lifetime.queue)
		m.lifetime.mu.Unlock()
		if q <= unclaimedBacklog {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("unclaimed backlog holds %d events, cap %d", q, unclaimedBacklog)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The newest event is still there.
	e, err := WaitEvent(ctx, m.Events(), func(e Event) bool { return e.DataInt("pass") == n-1 })
	if err != nil {
		t.Fatalf("newest event: %v", err)
	}
	_ = e
}

func TestWaitEventContext(t *testing.T) {
	s := newMockQEMU(t)
	m := dialMock(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := WaitEvent(ctx, m.Subscribe(ctx), EventIs(EventShutdown))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitEvent = %v, want DeadlineExceeded", err)
	}
}

// TestUnclaimedEventsReleasedAtClose: when nobody ever called Events, the
// lifetime subscription's goroutine must not stay blocked on its full
// channel after the monitor is gone.
func TestUnclaimedEventsReleasedAtClose(t *testing.T) {
	s := newMockQEMU(t)
	m := dialMock(t, s)
	ctx := testCtx(t)
	const n = 4 * subscriberBuffer
	for i := range n {
		s.emit(EventMigrationPass, map[string]any{"pass": i}, 1, 0)
	}
	if _, err := m.QueryStatus(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	// Give the abandoned goroutine time to exit on its own; if it had kept
	// waiting for a reader, reading now would pull all n events.
	time.Sleep(50 * time.Millisecond)
	got := 0
	for range m.lifetime.out {
		got++
	}
	if got >= n {
		t.Errorf("abandoned lifetime subscription still delivered %d events after Close", got)
	}
}
