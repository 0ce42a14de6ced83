package compat_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/govirtd/govirtd/test/deps"
)

// TestScreenshot: virsh domdisplay and vncdisplay say where the guest's
// VNC display is; virsh screenshot of a guest with a VGA display saves the
// screen as a PPM image (libvirt 9.0's format); a guest without video has
// no screen, a stopped one none either.
func TestScreenshot(t *testing.T) {
	deps.Require(t, "virsh", "qemu-system-x86_64")
	h := StartHost(t, HostOptions{})
	uri := h.UnixURI()
	x := GuestXML(t, GuestOptions{Name: "shot", Serial: filepath.Join(h.Dir, "shot.serial")})
	x = strings.Replace(x, "  </devices>", "    <graphics type='vnc' autoport='yes'/>\n    <video><model type='vga'/></video>\n  </devices>", 1)
	path := filepath.Join(h.Dir, "shot.xml")
	os.WriteFile(path, []byte(x), 0o644)
	MustVirsh(t, uri, "define", path)
	MustVirsh(t, uri, "start", "shot")
	t.Cleanup(func() { Virsh(t, uri, "destroy", "shot") })
	// Where the display is, as virsh reads it from the live XML.
	live := MustVirsh(t, uri, "dumpxml", "shot")
	port := regexp.MustCompile(`<graphics type='vnc' port='(\d+)'`).FindStringSubmatch(live)
	if port == nil {
		t.Fatalf("no VNC port in the live XML:\n%s", live)
	}
	n, _ := strconv.Atoi(port[1])
	if got := strings.TrimSpace(MustVirsh(t, uri, "domdisplay", "shot")); got != fmt.Sprintf("vnc://%s:%d", h.Addr, n-5900) {
		t.Errorf("domdisplay = %q (port %d)", got, n)
	}
	if got := strings.TrimSpace(MustVirsh(t, uri, "vncdisplay", "shot")); got != fmt.Sprintf("%s:%d", h.Addr, n-5900) {
		t.Errorf("vncdisplay = %q (port %d)", got, n)
	}
	img := filepath.Join(h.Dir, "screen.ppm")
	MustVirsh(t, uri, "screenshot", "shot", img)
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	// A PPM of VGA's 720x400 text mode or 640x480: "P6\n<w> <h>\n255\n" and
	// 3 bytes a pixel.
	if !bytes.HasPrefix(data, []byte("P6\n")) || len(data) < 640*400*3 {
		t.Errorf("screenshot: %d bytes, starting %q", len(data), data[:min(len(data), 16)])
	}
	mustFail(t, uri, "no screen 1", "screenshot", "shot", img, "--screen", "1")

	defineGuest(t, h, GuestOptions{Name: "novideo"})
	MustVirsh(t, uri, "start", "novideo")
	t.Cleanup(func() { Virsh(t, uri, "destroy", "novideo") })
	mustFail(t, uri, "no screens to take screenshot from", "screenshot", "novideo", img)
	MustVirsh(t, uri, "destroy", "shot")
	mustFail(t, uri, "domain is not running", "screenshot", "shot", img)
}
