package xdr_test

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	xdr2 "github.com/davecgh/go-xdr/xdr2"
	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/xdr"
)

type sample struct {
	Name   string
	UUID   [16]byte
	ID     int32
	Model  [4]int8
	Memory uint64
	Delta  int64
	Ratio  float64
	Blob   []byte
	List   []uint32
	Opt    libvirt.OptString
	Flag   bool
}

type withPointer struct {
	Ptr  *int32
	Tail uint32
}

// TestMatchesReferenceEncoder checks the codec against davecgh/go-xdr, the
// reference XDR implementation, on values both can express.
func TestMatchesReferenceEncoder(t *testing.T) {
	values := []any{
		&libvirt.ConnectOpenArgs{Name: libvirt.OptString{"qemu:///system"}, Flags: 0},
		&libvirt.ConnectOpenArgs{},
		&libvirt.NodeGetInfoRet{Model: [32]int8{'x', '8', '6'}, Memory: 1 << 40, Cpus: 2, Mhz: 2599, Nodes: 1, Sockets: 1, Cores: 2, Threads: 1},
		&libvirt.ConnectListAllDomainsRet{Domains: []libvirt.Domain{{Name: "demo", UUID: libvirt.UUID{1, 2, 3}, ID: 4}, {Name: "ab", ID: -1}}, Ret: 2},
		&libvirt.DomainMigratePrepare3ParamsRet{CookieOut: []byte("<qemu-migration/>\x00"), UriOut: libvirt.OptString{"tcp:127.0.0.3:49300"}},
		&sample{Name: "abcde", Model: [4]int8{-1, 2, 3, 4}, Memory: 9, Delta: -5, Ratio: 0.25, Blob: []byte{1, 2, 3, 4, 5}, List: []uint32{1, 2}, Opt: libvirt.OptString{"x"}, Flag: true},
	}
	for _, v := range values {
		got, err := xdr.Marshal(v)
		if err != nil {
			t.Fatalf("Marshal(%T): %v", v, err)
		}
		var want bytes.Buffer
		if _, err := xdr2.Marshal(&want, v); err != nil {
			t.Fatalf("reference Marshal(%T): %v", v, err)
		}
		if !bytes.Equal(got, want.Bytes()) {
			t.Errorf("%T:\n got %x\nwant %x", v, got, want.Bytes())
		}
		back := reflect.New(reflect.TypeOf(v).Elem())
		if err := xdr.Unmarshal(got, back.Interface()); err != nil {
			t.Fatalf("Unmarshal(%T): %v", v, err)
		}
		if !reflect.DeepEqual(back.Interface(), v) {
			t.Errorf("%T round trip: got %+v want %+v", v, back.Interface(), v)
		}
	}
}

func TestPointerOptional(t *testing.T) {
	seven := int32(7)
	for _, v := range []*withPointer{{Ptr: &seven, Tail: 3}, {Tail: 4}} {
		b, err := xdr.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var back withPointer
		if err := xdr.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if (v.Ptr == nil) != (back.Ptr == nil) || (v.Ptr != nil && *v.Ptr != *back.Ptr) || v.Tail != back.Tail {
			t.Errorf("pointer round trip: got %v want %v", back.Ptr, v.Ptr)
		}
	}
}

// TestUnexportedFieldKeepsWireShape: go-libvirt's DomainDiskError has an
// unexported field; the wire still carries it.
func TestUnexportedFieldKeepsWireShape(t *testing.T) {
	b, err := xdr.Marshal(&libvirt.DomainDiskError{Disk: "vda"})
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 4+4+4 {
		t.Fatalf("encoded %d bytes, want 12: %x", len(b), b)
	}
	var back libvirt.DomainDiskError
	if err := xdr.Unmarshal(b, &back); err != nil || back.Disk != "vda" {
		t.Fatalf("got %+v, %v", back, err)
	}
}

// TestLenientLikeLibvirt: the C XDR library reads any non-zero bool as true
// and ignores padding bytes; real clients depend on it (go-libvirt sends
// CONNECT_OPEN's name-present flag as 0x01000000).
func TestLenientLikeLibvirt(t *testing.T) {
	var open libvirt.ConnectOpenArgs
	in := []byte{1, 0, 0, 0, 0, 0, 0, 1, 'x', 9, 9, 9, 0, 0, 0, 0}
	if err := xdr.Unmarshal(in, &open); err != nil || len(open.Name) != 1 || open.Name[0] != "x" {
		t.Fatalf("got %+v, %v", open, err)
	}
	var b bool
	if err := xdr.Unmarshal([]byte{0, 0, 0, 7}, &b); err != nil || !b {
		t.Fatalf("bool 7: %v %v", b, err)
	}
}

func TestDecodeErrors(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		into any
		want error
	}{
		{"short int", []byte{0, 0, 1}, new(int32), xdr.ErrShort},
		{"trailing", []byte{0, 0, 0, 1, 0}, new(int32), xdr.ErrTrailing},
		{"string longer than input", []byte{0, 0, 0, 9, 'a', 'b', 'c', 'd'}, new(string), xdr.ErrShort},
		{"huge array", []byte{0xff, 0xff, 0xff, 0xff}, new([]libvirt.Domain), xdr.ErrShort},
		{"huge opaque", []byte{0x7f, 0xff, 0xff, 0xff}, new([]byte), xdr.ErrShort},
	}
	for _, c := range cases {
		err := xdr.Unmarshal(c.in, c.into)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
	// Errors that are not about length.
	bad := map[string]struct {
		in   []byte
		into any
	}{
		"string over limit":      {[]byte{0x01, 0, 0, 1}, new(string)},
		"optional without value": {[]byte{0, 0, 0, 1}, new(libvirt.OptString)},
	}
	for name, c := range bad {
		if err := xdr.Unmarshal(c.in, c.into); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
}
