package qemu

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver"
)

var _ driver.DomainScreenshots = (*Driver)(nil)

// Screenshot implements driver.DomainScreenshots as qemuDomainScreenshot:
// QEMU writes the screen to a file in the domain's runtime directory, the
// client gets its content and the MIME type libvirt 9.0 reports (PPM).
func (d *Driver) Screenshot(ctx context.Context, ref libvirt.Domain, screen uint32, flags uint32) (io.ReadCloser, string, error) {
	if flags != 0 {
		return nil, "", compat.Errorf(libvirt.ErrInvalidArg, compat.FromQEMU, "unsupported flags (0x%x) in function qemuDomainScreenshot", flags)
	}
	dom, err := d.get(ref)
	if err != nil {
		return nil, "", err
	}
	if !dom.active() {
		return nil, "", errNotRunning()
	}
	def := dom.current()
	if def == nil || def.Devices == nil || len(def.Devices.Videos) == 0 {
		return nil, "", compat.Errorf(libvirt.ErrOperationInvalid, compat.FromQEMU, "no screens to take screenshot from")
	}
	// libvirt counts screens over the heads of every video device.
	device, head, found := "", 0, false
	n := uint32(0)
	for i, v := range def.Devices.Videos {
		heads := uint32(1)
		if v.Model.Heads > 0 {
			heads = uint32(v.Model.Heads)
		}
		if screen < n+heads {
			if i > 0 || screen > 0 {
				if v.Alias != nil {
					device = v.Alias.Name
				}
				head = int(screen - n)
			}
			found = true
			break
		}
		n += heads
	}
	if !found {
		return nil, "", compat.Errorf(libvirt.ErrInvalidArg, compat.FromQEMU, "no screen %d", screen)
	}
	mon, err := dom.monitor()
	if err != nil {
		return nil, "", err
	}
	dom.mu.Lock()
	runDir := dom.runDir
	dom.mu.Unlock()
	f, err := os.CreateTemp(runDir, "qemu.screendump.*")
	if err != nil {
		return nil, "", fmt.Errorf("screenshot: %w", err)
	}
	path := f.Name()
	f.Close()
	// The file is read through the open descriptor; its name goes at once.
	defer os.Remove(path)
	if err := mon.Screendump(ctx, path, device, head); err != nil {
		return nil, "", compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "screendump: %v", err)
	}
	img, err := os.Open(filepath.Clean(path))
	if err != nil {
		return nil, "", compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "unable to open %s: %v", path, err)
	}
	return img, "image/x-portable-pixmap", nil
}
