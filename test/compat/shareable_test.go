package compat_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govirtd/govirtd/test/deps"
)

// TestShareableDisk: two guests run at once on one raw image marked
// <shareable/> (QEMU's share-rw lets the second open it); a shareable
// qcow2 is refused with libvirt's error.
func TestShareableDisk(t *testing.T) {
	deps.Require(t, "virsh", "qemu-system-x86_64", "qemu-img")
	h := StartHost(t, HostOptions{})
	uri := h.UnixURI()
	img := filepath.Join(h.Dir, "shared.raw")
	if r := run(t, 30*time.Second, "qemu-img", "create", "-f", "raw", img, "16M"); r.Err != nil {
		t.Fatal(r)
	}
	qcow := filepath.Join(h.Dir, "shared.qcow2")
	if r := run(t, 30*time.Second, "qemu-img", "create", "-f", "qcow2", qcow, "16M"); r.Err != nil {
		t.Fatal(r)
	}
	guest := func(name, path, format string) string {
		disk := "<disk type='file' device='disk'><driver name='qemu' type='" + format + "'/><source file='" + path +
			"'/><target dev='vda' bus='virtio'/><shareable/></disk>\n"
		x := strings.Replace(GuestXML(t, GuestOptions{Name: name, Serial: filepath.Join(h.Dir, name+".serial")}), "<devices>\n", "<devices>\n    "+disk, 1)
		p := filepath.Join(h.Dir, name+".xml")
		os.WriteFile(p, []byte(x), 0o644)
		return p
	}
	for _, name := range []string{"sh1", "sh2"} {
		MustVirsh(t, uri, "define", guest(name, img, "raw"))
		MustVirsh(t, uri, "start", name)
		t.Cleanup(func() { Virsh(t, uri, "destroy", name) })
	}
	for _, name := range []string{"sh1", "sh2"} {
		WaitTicks(t, filepath.Join(h.Dir, name+".serial"), 2, 90*time.Second)
		mustContain(t, "live XML of "+name, MustVirsh(t, uri, "dumpxml", name), "<shareable/>")
	}
	MustVirsh(t, uri, "define", guest("shq", qcow, "qcow2"))
	mustFail(t, uri, "shared access for disk 'vda' requires use of supported storage format", "start", "shq")
}
