package server

import (
	"errors"
	"io"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver"
)

// registerScreenshotHandlers binds DOMAIN_SCREENSHOT (virsh screenshot)
// when the driver takes screenshots: the reply names the MIME type, the
// picture follows on the call's stream.
func registerScreenshotHandlers(t *Table, s *Server) {
	shots, ok := s.drv.(driver.DomainScreenshots)
	if !ok {
		return
	}
	t.DomainScreenshot(func(c *Call, a *libvirt.DomainScreenshotArgs) (*libvirt.DomainScreenshotRet, error) {
		img, mime, err := shots.Screenshot(c.Ctx, a.Dom, a.Screen, a.Flags)
		if err != nil {
			return nil, err
		}
		st, err := c.OpenSendStream(false)
		if err != nil {
			img.Close()
			return nil, err
		}
		go sendFile(st, img)
		return &libvirt.DomainScreenshotRet{Mime: libvirt.OptString{mime}}, nil
	})
}

// sendFile streams r to the client, then the end of the data.
func sendFile(st *Stream, r io.ReadCloser) {
	defer r.Close()
	buf := make([]byte, streamChunkBytes)
	for {
		n, err := r.Read(buf)
		if n > 0 && st.Send(buf[:n]) != nil {
			return
		}
		if errors.Is(err, io.EOF) {
			_ = st.SendEOF()
			return
		}
		if err != nil {
			st.SendError(compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "cannot read the screenshot: %v", err))
			return
		}
	}
}
