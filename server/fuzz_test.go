package server

import (
	"testing"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/driver"
	"github.com/govirtd/govirtd/rpc"
	"github.com/govirtd/govirtd/xdr"
)

// FuzzDecodeCallArgs decodes arbitrary bodies as the arguments of every
// procedure the server implements, through the dispatch table itself:
// whatever a client sends, decoding fails cleanly or yields a value; it
// never panics.
func FuzzDecodeCallArgs(f *testing.F) {
	tbl := NewTable()
	// With a storage driver, so that its procedures are decoded too (only
	// decoding runs here, never a driver method).
	registerHandlers(tbl, &Server{storage: struct{ driver.Storage }{}})
	procs := tbl.Implemented()
	seed := func(p rpc.Procedure, v any) {
		b, err := xdr.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint32(p), b)
	}
	seed(rpc.ProcConnectOpen, &libvirt.ConnectOpenArgs{Name: libvirt.OptString{"qemu:///system"}})
	seed(rpc.ProcDomainLookupByName, &libvirt.DomainLookupByNameArgs{Name: "demo"})
	seed(rpc.ProcDomainMigrateBegin3Params, &libvirt.DomainMigrateBegin3ParamsArgs{Dom: libvirt.Domain{Name: "d"}, Params: []libvirt.TypedParam{{Field: "bandwidth", Value: *libvirt.NewTypedParamValueUllong(1)}}, Flags: 0x101})
	seed(rpc.ProcDomainMigratePrepare3Params, &libvirt.DomainMigratePrepare3ParamsArgs{Params: []libvirt.TypedParam{{Field: "destination_xml", Value: *libvirt.NewTypedParamValueString("<domain/>")}}, CookieIn: []byte("<qemu-migration/>\x00")})
	seed(rpc.ProcConnectGetAllDomainStats, &libvirt.ConnectGetAllDomainStatsArgs{Doms: []libvirt.Domain{{Name: "x"}}, Stats: 1})
	f.Fuzz(func(t *testing.T, proc uint32, body []byte) {
		h, ok := tbl.lookup(procs[int(proc%uint32(len(procs)))])
		if !ok {
			t.Fatal("implemented procedure without a handler")
		}
		h.decode(body)
	})
}

// FuzzStreamHole decodes arbitrary STREAM_HOLE bodies: a hole is a
// non-negative length, anything else is refused; never a panic.
func FuzzStreamHole(f *testing.F) {
	good, _ := xdr.Marshal(&streamHole{Length: 1 << 20})
	f.Add(good)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, body []byte) {
		n, err := decodeStreamHole(body)
		if err == nil && n < 0 {
			t.Fatalf("negative hole %d accepted", n)
		}
	})
}
