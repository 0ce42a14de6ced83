package compat_test

import (
	"testing"
	"time"

	"github.com/govirtd/govirtd/test/flowlimit"
)

// TestNonConvergingFinishesWithParallel: between the hosts, a link that
// gives each TCP connection 8 MiB/s. A guest rewriting 64 MiB at 16 MiB/s
// does not converge over one connection (plain pre-copy, asserted); with
// --parallel --parallel-connections 4 QEMU's multifd channels are four
// flows, and the migration finishes with every page intact.
func TestNonConvergingFinishesWithParallel(t *testing.T) {
	t.Parallel()
	guest := nonConverging
	guest.DirtyRate = 16
	a, b, serial := twoHosts(t, "pl", guest)
	link, err := flowlimit.Listen(nextAddr()+":0", b.Addr, 8<<20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(link.Close)
	uri := link.URI()

	plain := background(t, 3*time.Minute, "virsh", "-c", a.URI(), "migrate", "--live", "--migrateuri", uri, "pl", b.URI())
	assertNotConverging(t, a, "pl", plain, 30*time.Second)
	MustVirsh(t, a.URI(), "domjobabort", "pl")
	if r := <-plain; r.Err == nil {
		t.Fatalf("aborted pre-copy: %s", r)
	}
	flows := link.Flows()

	before, _ := LastTick(serial)
	start := time.Now()
	if r := run(t, 3*time.Minute, "virsh", "-c", a.URI(), "migrate", "--live", "--migrateuri", uri,
		"--parallel", "--parallel-connections", "4", "pl", b.URI()); r.Err != nil {
		t.Fatal(r)
	}
	t.Logf("parallel, 4 connections: %s", time.Since(start).Round(time.Second))
	// The main channel and the four multifd ones went through the link.
	if got := link.Flows() - flows; got != 5 {
		t.Errorf("the parallel migration opened %d connections through the link, want 5 (main + 4 channels)", got)
	}
	checkMoved(t, a, b, "pl", serial, before)
}
