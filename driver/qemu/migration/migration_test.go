package migration

import (
	"errors"
	"testing"
)

func TestSourcePhases(t *testing.T) {
	j := New(Source, 0x101)
	for _, p := range []Phase{Begin3, Perform3, Perform3Done, Confirm3} {
		if err := j.Advance(p); err != nil {
			t.Fatalf("advance to %s: %v", p, err)
		}
	}
	// A confirm without a begin, a perform after confirm: typed errors.
	var ise *IllegalStepError
	if err := New(Source, 0).Advance(Confirm3); !errors.As(err, &ise) || ise.From != None || ise.To != Confirm3 {
		t.Fatalf("confirm without begin: %v", err)
	}
	if err := j.Advance(Perform3); !errors.As(err, &ise) {
		t.Fatalf("perform after confirm: %v", err)
	}
	// Prepare failed on the destination: begin3 → confirm3_cancelled.
	k := New(Source, 0)
	k.Advance(Begin3)
	if err := k.Advance(Confirm3Cancelled); err != nil {
		t.Fatal(err)
	}
}

func TestDestinationPhases(t *testing.T) {
	j := New(Destination, 0)
	if err := j.Advance(Finish3); err == nil {
		t.Fatal("finish before prepare was allowed")
	}
	if err := j.Advance(Prepare); err != nil {
		t.Fatal(err)
	}
	if err := j.Advance(Finish3); err != nil {
		t.Fatal(err)
	}
	if err := j.Advance(Begin3); err == nil {
		t.Fatal("a destination job accepted a source phase")
	}
}

func TestPersistRoundTrip(t *testing.T) {
	j := New(Source, 0x8)
	j.Advance(Begin3)
	j.PeerURI = "qemu+tcp://127.0.0.3/system"
	b, err := j.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	k, err := Unmarshal(b)
	if err != nil || k.Phase != Begin3 || k.PeerURI != j.PeerURI || k.Flags != 0x8 {
		t.Fatalf("%+v %v", k, err)
	}
	if _, err := Unmarshal([]byte(`{"role":"sideways"}`)); err == nil {
		t.Fatal("unknown role accepted")
	}
}

func TestRollbackRunsNewestFirstAndKeepsGoing(t *testing.T) {
	var r Rollback
	var order []string
	r.Add("a", func() error { order = append(order, "a"); return nil })
	r.Add("b", func() error { order = append(order, "b"); return errors.New("boom") })
	r.Add("c", func() error { order = append(order, "c"); return nil })
	errs := r.Run()
	if len(errs) != 1 || len(order) != 3 || order[0] != "c" || order[2] != "a" {
		t.Fatalf("order %v errs %v", order, errs)
	}
	r.Add("d", func() error { t.Fatal("discarded undo ran"); return nil })
	r.Discard()
	r.Run()
}

func TestPostcopyFailureAndRecoveryPhases(t *testing.T) {
	src := New(Source, 0)
	for _, p := range []Phase{Begin3, Perform3, Perform3Done, PostcopyFailed, BeginResume, PostcopyFailed, BeginResume, PerformResume, ConfirmResume} {
		if err := src.Advance(p); err != nil {
			t.Fatalf("source to %s: %v", p, err)
		}
	}
	// Once post-copy failed the source may only be recovered: a plain
	// confirm (which would stop or resume it) is illegal.
	f := New(Source, 0)
	for _, p := range []Phase{Begin3, Perform3, Perform3Done, PostcopyFailed} {
		f.Advance(p)
	}
	for _, p := range []Phase{Confirm3, Confirm3Cancelled, Perform3} {
		var ise *IllegalStepError
		if err := f.Advance(p); !errors.As(err, &ise) {
			t.Fatalf("postcopy_failed to %s allowed: %v", p, err)
		}
	}
	dst := New(Destination, 0)
	for _, p := range []Phase{Prepare, PostcopyFailed, PrepareResume, PostcopyFailed, PrepareResume, FinishResume} {
		if err := dst.Advance(p); err != nil {
			t.Fatalf("destination to %s: %v", p, err)
		}
	}
	if err := New(Destination, 0).Advance(PrepareResume); err == nil {
		t.Fatal("prepare_resume without a failed post-copy was allowed")
	}
}
