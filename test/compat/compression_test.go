package compat_test

import (
	"strings"
	"testing"
	"time"

	"github.com/govirtd/govirtd/test/deps"
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

// TestParallelMultifdCompression: --parallel with --comp-methods zstd, and
// back with zlib (libvirt 9.4's multifd compression, which govirtd takes),
// moves a guest that rewrites memory with every page intact; the methods'
// rules are libvirt's. It does not rescue the non-converging guest at
// --bandwidth 8: QEMU 7.2 counts multifd pages against max-bandwidth before
// compression (measured: 10 MiB/s of pages, still in pre-copy after 2 min).
func TestParallelMultifdCompression(t *testing.T) {
	t.Parallel()
	deps.Require(t, "virsh", "qemu-system-x86_64")
	a := StartHost(t, HostOptions{Name: "zm-a"})
	b := StartHost(t, HostOptions{Name: "zm-b"})
	serial := interopGuest(t, a.URI(), "zm", a.Dir, "")
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--compressed", "--comp-methods", "zstd"}, "Compression method 'zstd' is only supported with parallel migration"},
		{[]string{"--parallel", "--compressed", "--comp-methods", "zstd,zlib"}, "Only one compression method could be specified with parallel compression"},
		{[]string{"--parallel", "--compressed", "--comp-methods", "lz4"}, "Unsupported compression method 'lz4'"},
	} {
		argv := append([]string{"-c", a.URI(), "migrate", "--live"}, c.args...)
		if r := run(t, time.Minute, "virsh", append(argv, "zm", b.URI())...); r.Err == nil || !strings.Contains(r.Stderr, c.msg) {
			t.Fatalf("virsh %s: %s", strings.Join(c.args, " "), r)
		}
	}
	// At 8 MiB/s the move takes long enough to see what QEMU was given.
	before, _ := LastTick(serial)
	migrate := background(t, 3*time.Minute, "virsh", "-c", a.URI(), "migrate", "--live", "--bandwidth", "8",
		"--parallel", "--parallel-connections", "2", "--compressed", "--comp-methods", "zstd", "zm", b.URI())
	deadline := time.Now().Add(time.Minute)
	for {
		r := Virsh(t, a.URI(), "qemu-monitor-command", "zm", `{"execute":"query-migrate-parameters"}`)
		if strings.Contains(r.Stdout, `"multifd-compression":"zstd"`) && strings.Contains(r.Stdout, `"multifd-channels":2`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("source QEMU never had multifd zstd with 2 channels: %s", r)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if r := <-migrate; r.Err != nil {
		t.Fatal(r)
	}
	checkMoved(t, a, b, "zm", serial, before)
	moveAndCheck(t, b.URI(), a.URI(), "zm", serial, "--parallel", "--compressed", "--comp-methods", "zlib")
}
