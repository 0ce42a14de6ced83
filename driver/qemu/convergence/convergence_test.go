package convergence

import (
	"strings"
	"testing"
	"time"
)

func TestGuardEscalatesInOrderSkippingWhatIsUnavailable(t *testing.T) {
	g := New(Policy{Stall: 10 * time.Second}, map[Action]bool{Postcopy: true, Abort: true})
	if sk := g.Skipped(); len(sk) != 1 || sk[0] != Throttle {
		t.Fatalf("skipped = %v, want [throttle]", sk)
	}
	t0 := time.Unix(1000, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	const mb = 1 << 20
	// Progress: each sample shrinks by more than 5 %: nothing happens.
	for i, rem := range []uint64{100 * mb, 90 * mb, 80 * mb} {
		if d, ok := g.Observe(Sample{At: at(i * 5), Remaining: rem, Iteration: uint64(i)}); ok {
			t.Fatalf("decision while converging: %+v", d)
		}
	}
	// Stalled around 80 MiB (small wobbles do not count as progress).
	if _, ok := g.Observe(Sample{At: at(15), Remaining: 78 * mb, Iteration: 3}); ok {
		t.Fatal("decision before the stall time")
	}
	d, ok := g.Observe(Sample{At: at(20), Remaining: 79 * mb, Iteration: 5, DirtyRate: 32 * mb, Bandwidth: 8 * mb})
	if !ok || d.Action != Postcopy {
		t.Fatalf("first decision = %+v, %v; want postcopy (throttle unavailable)", d, ok)
	}
	for _, want := range []string{"79.0 MiB", "10s", "over 3 iterations", "dirties 32.0 MiB/s", "8.0 MiB/s is sent"} {
		if !strings.Contains(d.Reason, want) {
			t.Errorf("reason %q lacks %q", d.Reason, want)
		}
	}
	// The action gets a full stall period.
	if _, ok := g.Observe(Sample{At: at(25), Remaining: 79 * mb, Iteration: 6}); ok {
		t.Fatal("second decision without a new stall period")
	}
	if d, ok := g.Observe(Sample{At: at(31), Remaining: 79 * mb, Iteration: 8}); !ok || d.Action != Abort {
		t.Fatalf("second decision = %+v, %v; want abort", d, ok)
	}
	if _, ok := g.Observe(Sample{At: at(60), Remaining: 79 * mb, Iteration: 12}); ok {
		t.Fatal("a decision after the last action")
	}
	if got := g.Decisions(); len(got) != 2 || got[0].Action != Postcopy || got[1].Action != Abort {
		t.Fatalf("decisions = %+v", got)
	}
}

func TestGuardOffAndConfiguredOrder(t *testing.T) {
	off := New(Policy{}, map[Action]bool{Abort: true})
	if off.Enabled() {
		t.Fatal("a guard without a stall time is on")
	}
	if _, ok := off.Observe(Sample{At: time.Unix(0, 0)}); ok {
		t.Fatal("a disabled guard decided")
	}
	acts, err := ParseActions([]string{"abort", " throttle"})
	if err != nil || len(acts) != 2 || acts[0] != Abort || acts[1] != Throttle {
		t.Fatalf("ParseActions = %v, %v", acts, err)
	}
	if _, err := ParseActions([]string{"reboot"}); err == nil {
		t.Fatal("unknown action accepted")
	}
	if _, err := ParseActions([]string{"abort", "abort"}); err == nil {
		t.Fatal("repeated action accepted")
	}
	g := New(Policy{Stall: time.Second, Actions: acts}, map[Action]bool{Abort: true, Throttle: true})
	g.Observe(Sample{At: time.Unix(0, 0), Remaining: 10})
	if d, ok := g.Observe(Sample{At: time.Unix(2, 0), Remaining: 10}); !ok || d.Action != Abort {
		t.Fatalf("configured order not followed: %+v %v", d, ok)
	}
}
