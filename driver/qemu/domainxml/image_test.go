package domainxml

import (
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/govirtd/govirtd/test/deps"
)

// BackingChain reads a chain as qemu-img writes it: absolute and relative
// backing names with their formats recorded, ending at a raw image; a
// loop is an error, not a hang. (qemu-img 7.2 no longer writes a backing
// name without its format, so the probe for old images is not covered.)
func TestBackingChain(t *testing.T) {
	deps.Require(t, "qemu-img")
	dir := t.TempDir()
	img := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("qemu-img", append([]string{"create", "-q"}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("qemu-img %v: %v: %s", args, err, out)
		}
	}
	base, mid, top := filepath.Join(dir, "base.raw"), filepath.Join(dir, "mid.qcow2"), filepath.Join(dir, "top.qcow2")
	img("-f", "raw", base, "1M")
	img("-f", "qcow2", "-b", base, "-F", "raw", mid)
	// Relative to the image naming it.
	img("-f", "qcow2", "-u", "-b", "mid.qcow2", "-F", "qcow2", top, "1M")
	got, err := BackingChain(top, "qcow2")
	if err != nil {
		t.Fatal(err)
	}
	want := []Image{{Path: mid, Format: "qcow2"}, {Path: base, Format: "raw"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("BackingChain = %+v\nwant %+v", got, want)
	}
	if got, err := BackingChain(base, "raw"); err != nil || len(got) != 0 {
		t.Errorf("raw image: %+v, %v", got, err)
	}
	loop := filepath.Join(dir, "loop.qcow2")
	img("-f", "qcow2", "-u", "-b", "loop.qcow2", "-F", "qcow2", loop, "1M")
	if _, err := BackingChain(loop, "qcow2"); err == nil {
		t.Errorf("a self-backed image gave no error")
	}
}
