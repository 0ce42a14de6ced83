package compat_test

import (
	"strings"
	"testing"
	"time"
)

// TestNonConvergingFinishesWithCompression: a guest that dirties 64 MiB
// at 32 MiB/s, changing a few words of each page it dirties, does not
// converge at --bandwidth 8 in plain pre-copy (each dirty page goes whole);
// with --compressed (XBZRLE, a cache that holds the area) each dirty page
// goes as a small delta, and the migration finishes with every page
// intact. A guest that rewrites whole pages (nonConverging) gains nothing
// from XBZRLE: compression is for guests whose pages change in part.
func TestNonConvergingFinishesWithCompression(t *testing.T) {
	t.Parallel()
	o := nonConverging
	o.DirtySparse = true
	a, b, serial := twoHosts(t, "zc", o)

	plain := background(t, 3*time.Minute, "virsh", "-c", a.URI(), "migrate", "--live", "--bandwidth", "8", "zc", b.URI())
	assertNotConverging(t, a, "zc", plain, 40*time.Second)
	MustVirsh(t, a.URI(), "domjobabort", "zc")
	if r := <-plain; r.Err == nil || !strings.Contains(r.Stderr, "cancel") {
		t.Fatalf("aborted pre-copy: %s", r)
	}

	before, _ := LastTick(serial)
	start := time.Now()
	if r := run(t, 4*time.Minute, "virsh", "-c", a.URI(), "migrate", "--live", "--bandwidth", "8",
		"--compressed", "--comp-methods", "xbzrle", "--comp-xbzrle-cache", "134217728", "zc", b.URI()); r.Err != nil {
		t.Fatal(r)
	}
	t.Logf("xbzrle: %s", time.Since(start).Round(time.Second))
	checkMoved(t, a, b, "zc", serial, before)
}
