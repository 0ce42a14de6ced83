package rpc_test

import (
	"bytes"
	"testing"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/rpc"
	"github.com/govirtd/govirtd/xdr"
)

// FuzzReadPacket: any byte stream either frames into packets or fails; it
// never panics and never yields a packet larger than the limit.
func FuzzReadPacket(f *testing.F) {
	for _, s := range []string{capturedConnectOpen, capturedBegin3, capturedPing} {
		f.Add(unhex(f, s))
	}
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		for {
			p, err := rpc.ReadPacket(r)
			if err != nil {
				return
			}
			if len(p.Body)+rpc.HeaderSize+rpc.LenSize > rpc.MaxMessage {
				t.Fatalf("packet of %d bytes", len(p.Body))
			}
		}
	})
}

// FuzzDecodeArgs decodes arbitrary bodies as the argument structures the
// server decodes most (typed parameters, optional values, strings), and
// checks that whatever decodes re-encodes to a canonical form that decodes
// to the same value. (Input and output bytes may differ: like libvirt, the
// decoder accepts any non-zero bool and ignores padding bytes.)
func FuzzDecodeArgs(f *testing.F) {
	p, _ := rpc.ReadPacket(bytes.NewReader(unhex(f, capturedBegin3)))
	f.Add(uint8(0), p.Body)
	o, _ := rpc.ReadPacket(bytes.NewReader(unhex(f, capturedConnectOpen)))
	f.Add(uint8(1), o.Body)
	f.Add(uint8(2), []byte{0, 0, 0, 1, 0, 0, 0, 0})
	f.Add(uint8(3), []byte{0, 0, 0, 2, 'a', 'b', 0, 0, 0, 0, 0, 0})
	targets := []func() any{
		func() any { return new(libvirt.DomainMigrateBegin3ParamsArgs) },
		func() any { return new(libvirt.ConnectOpenArgs) },
		func() any { return new(libvirt.ConnectDomainEventCallbackRegisterAnyArgs) },
		func() any { return new(libvirt.DomainMigratePrepare3ParamsArgs) },
		func() any { return new(rpc.RemoteError) },
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		v := targets[int(which)%len(targets)]()
		if err := xdr.Unmarshal(body, v); err != nil {
			return
		}
		canon, err := xdr.Marshal(v)
		if err != nil {
			t.Fatalf("decoded %T does not re-encode: %v", v, err)
		}
		if len(canon) != len(body) {
			t.Fatalf("%T: re-encoded %d bytes from %d", v, len(canon), len(body))
		}
		w := targets[int(which)%len(targets)]()
		if err := xdr.Unmarshal(canon, w); err != nil {
			t.Fatalf("%T: canonical form does not decode: %v", v, err)
		}
		again, _ := xdr.Marshal(w)
		if !bytes.Equal(again, canon) {
			t.Fatalf("%T: not stable: %x then %x", v, canon, again)
		}
	})
}
