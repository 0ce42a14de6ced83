package rpc_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/rpc"
	"github.com/govirtd/govirtd/xdr"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Captured from virsh 9.0 talking to libvirtd 9.0 (the protocol facts file, §1).
const (
	capturedConnectOpen = `00 00 00 38 20 00 80 86 00 00 00 01 00 00 00 01
		00 00 00 00 00 00 00 02 00 00 00 00 00 00 00 01
		00 00 00 0e 71 65 6d 75 3a 2f 2f 2f 73 79 73 74
		65 6d 00 00 00 00 00 00`
	capturedBegin3 = `00 00 00 5c 20 00 80 86 00 00 00 01 00 00 01 2e
		00 00 00 00 00 00 00 0a 00 00 00 00 00 00 00 04
		73 6c 6f 77 54 17 fc 65 79 69 44 70 83 da 30 29
		76 c8 ad 47 00 00 00 0e 00 00 00 01 00 00 00 09
		62 61 6e 64 77 69 64 74 68 00 00 00 00 00 00 04
		00 00 00 00 00 00 00 01 00 00 01 01`
	capturedPing = `00 00 00 1c 6b 65 65 70 00 00 00 01 00 00 00 01
		00 00 00 02 00 00 00 00 00 00 00 00`
)

func TestDecodeCapturedConnectOpen(t *testing.T) {
	raw := unhex(t, capturedConnectOpen)
	p, err := rpc.ReadPacket(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	want := rpc.Header{Program: rpc.ProgramRemote, Version: 1, Procedure: rpc.ProcConnectOpen, Type: rpc.Call, Serial: 2, Status: rpc.OK}
	if p.Header != want {
		t.Fatalf("header %+v, want %+v", p.Header, want)
	}
	var args libvirt.ConnectOpenArgs
	if err := xdr.Unmarshal(p.Body, &args); err != nil {
		t.Fatal(err)
	}
	if len(args.Name) != 1 || args.Name[0] != "qemu:///system" || args.Flags != 0 {
		t.Fatalf("args %+v", args)
	}
	// Re-encoding gives the captured bytes back.
	body, err := xdr.Marshal(&args)
	if err != nil {
		t.Fatal(err)
	}
	again, err := rpc.AppendPacket(nil, p.Header, body)
	if err != nil || !bytes.Equal(again, raw) {
		t.Fatalf("re-encoded %x, want %x (%v)", again, raw, err)
	}
}

func TestDecodeCapturedBegin3TypedParam(t *testing.T) {
	raw := unhex(t, capturedBegin3)
	p, err := rpc.ReadPacket(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if p.Procedure != rpc.ProcDomainMigrateBegin3Params || p.Procedure.String() != "DOMAIN_MIGRATE_BEGIN3_PARAMS" {
		t.Fatalf("procedure %d %s", p.Procedure, p.Procedure)
	}
	var args libvirt.DomainMigrateBegin3ParamsArgs
	if err := xdr.Unmarshal(p.Body, &args); err != nil {
		t.Fatal(err)
	}
	if args.Dom.Name != "slow" || args.Dom.ID != 14 || args.Flags != 0x101 {
		t.Fatalf("args %+v", args)
	}
	if len(args.Params) != 1 || args.Params[0].Field != "bandwidth" {
		t.Fatalf("params %+v", args.Params)
	}
	v := args.Params[0].Value
	if v.D != rpc.ParamULLong || v.I != uint64(1) {
		t.Fatalf("bandwidth value %+v (%T)", v, v.I)
	}
	body, err := xdr.Marshal(&args)
	if err != nil || !bytes.Equal(body, p.Body) {
		t.Fatalf("re-encoded body %x, want %x (%v)", body, p.Body, err)
	}
}

func TestKeepalivePing(t *testing.T) {
	raw := unhex(t, capturedPing)
	p, err := rpc.ReadPacket(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if p.Program != rpc.ProgramKeepalive || p.Procedure != rpc.KeepalivePing || p.Type != rpc.Message || len(p.Body) != 0 {
		t.Fatalf("%+v", p)
	}
}

func TestRemoteErrorMatchesCapture(t *testing.T) {
	// The error reply of `virsh dominfo nosuch` from libvirtd 9.0.
	raw := unhex(t, `00 00 00 c8 20 00 80 86 00 00 00 01 00 00 00 17
		00 00 00 01 00 00 00 06 00 00 00 01 00 00 00 2a
		00 00 00 0a 00 00 00 01 00 00 00 37`+hex.EncodeToString([]byte("Domain not found: no domain with matching name 'nosuch'"))+`00
		00 00 00 02 00 00 00 00 00 00 00 01 00 00 00 14`+hex.EncodeToString([]byte("Domain not found: %s"))+`
		00 00 00 01 00 00 00 25`+hex.EncodeToString([]byte("no domain with matching name 'nosuch'"))+`00 00 00
		00 00 00 00 ff ff ff ff ff ff ff ff 00 00 00 00`)
	p, err := rpc.ReadPacket(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	var re rpc.RemoteError
	if err := xdr.Unmarshal(p.Body, &re); err != nil {
		t.Fatal(err)
	}
	if re.Code != 42 || re.Domain != 10 || re.Message[0] != "Domain not found: no domain with matching name 'nosuch'" || re.Int1 != -1 || re.Int2 != -1 || len(re.Str3) != 0 {
		t.Fatalf("%+v", re)
	}
	body, _ := xdr.Marshal(&re)
	if !bytes.Equal(body, p.Body) {
		t.Fatalf("re-encoded %x\nwant %x", body, p.Body)
	}
}

func TestFramingLimits(t *testing.T) {
	for name, c := range map[string]struct {
		in   string
		want error
	}{
		"length below header": {"00 00 00 10 00 00 00 00", rpc.ErrTooSmall},
		"length over 32 MiB":  {"02 00 00 01", rpc.ErrTooLarge},
	} {
		_, err := rpc.ReadPacket(bytes.NewReader(unhex(t, c.in)))
		if !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", name, err, c.want)
		}
	}
	// A truncated packet is an error, not a hang or a short packet.
	raw := unhex(t, capturedConnectOpen)
	if _, err := rpc.ReadPacket(bytes.NewReader(raw[:30])); err == nil {
		t.Error("truncated packet decoded")
	}
	if _, err := rpc.AppendPacket(nil, rpc.Header{}, make([]byte, rpc.MaxMessage)); !errors.Is(err, rpc.ErrTooLarge) {
		t.Errorf("oversized reply: %v", err)
	}
}

func TestProcedureNames(t *testing.T) {
	if rpc.ProcConnectOpen != 1 || rpc.ProcDomainMigratePerform3Params != 305 || rpc.ProcDomainEventCallbackLifecycle != 318 {
		t.Fatal("generated procedure numbers do not match libvirt's")
	}
	if got := rpc.ProcDomainLookupByName.API(); got != "virDomainLookupByName" {
		t.Errorf("API() = %q", got)
	}
	if got := rpc.Procedure(99999).String(); got != "PROC_99999" {
		t.Errorf("unknown procedure name %q", got)
	}
}

// TestAnnouncedLengthIsNotAllocatedUpFront: a client announcing the
// maximum length and then sending little costs little memory.
func TestAnnouncedLengthIsNotAllocatedUpFront(t *testing.T) {
	var hdr bytes.Buffer
	hdr.Write([]byte{0x02, 0x00, 0x00, 0x00}) // exactly 32 MiB
	hdr.Write(make([]byte, 1024))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := rpc.ReadPacket(bytes.NewReader(hdr.Bytes()))
	runtime.ReadMemStats(&after)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("got %v, want unexpected EOF", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Fatalf("reading 1 KiB of an announced 32 MiB packet allocated %d bytes", grew)
	}
}
