package savefile

import (
	"bytes"
	"testing"

	"github.com/govirtd/govirtd/compat"
)

// FuzzParse: the file a client names for restore or save-image-dumpxml is
// anything at all. Parse must never panic, must answer with a libvirt
// error, and must not allocate more than the file could hold.
func FuzzParse(f *testing.F) {
	h := Header{Version: Version, DataLen: 8, WasRunning: true}
	f.Add(append(h.marshal(Magic), []byte("<domain>")...))
	h.CookieOffset = 4
	f.Add(append(h.marshal(Magic), []byte("<a/>\x00<c>")...))
	f.Add(h.marshal(Partial))
	f.Add([]byte("LibvirtQemudSave"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		im, err := Parse(bytes.NewReader(data))
		if err != nil {
			if le := compat.As(err); le.Err != nil {
				t.Fatalf("not a libvirt error: %v", err)
			}
			return
		}
		if int64(len(data)) < im.StreamOffset() {
			t.Fatalf("parsed %d bytes of data from a %d-byte file", im.DataLen, len(data))
		}
	})
}
