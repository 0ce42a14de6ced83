package server

import (
	"testing"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/xdr"
)

func TestListRepliesReusedOnlyForTheSameDomains(t *testing.T) {
	var lr listReplies
	k := listKey{flags: 0, needResults: true}
	doms := func(id int32) []libvirt.Domain {
		return []libvirt.Domain{{Name: "a", UUID: libvirt.UUID{1}, ID: id}, {Name: "b", UUID: libvirt.UUID{2}, ID: -1}}
	}
	decode := func(b []byte) libvirt.ConnectListAllDomainsRet {
		t.Helper()
		var r libvirt.ConnectListAllDomainsRet
		if err := xdr.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	first, err := lr.body(k, doms(-1), &libvirt.ConnectListAllDomainsRet{Domains: doms(-1), Ret: 2})
	if err != nil {
		t.Fatal(err)
	}
	// Same domains, fresh slice: the memo answers (and would even if ret
	// differed, which proves the reuse).
	again, _ := lr.body(k, doms(-1), &libvirt.ConnectListAllDomainsRet{Ret: 99})
	if &again[0] != &first[0] {
		t.Fatal("identical list was encoded again")
	}
	// Domain a started (id 7): encoded anew, and right.
	started, _ := lr.body(k, doms(7), &libvirt.ConnectListAllDomainsRet{Domains: doms(7), Ret: 2})
	if got := decode(started); got.Domains[0].ID != 7 || got.Ret != 2 {
		t.Fatalf("after a change: %+v", got)
	}
	// Another filter has its own entry.
	count, _ := lr.body(listKey{needResults: false}, doms(7), &libvirt.ConnectListAllDomainsRet{Ret: 2})
	if got := decode(count); len(got.Domains) != 0 || got.Ret != 2 {
		t.Fatalf("count only: %+v", got)
	}
	// A removed domain changes the list.
	gone, _ := lr.body(k, doms(7)[:1], &libvirt.ConnectListAllDomainsRet{Domains: doms(7)[:1], Ret: 1})
	if got := decode(gone); len(got.Domains) != 1 || got.Ret != 1 {
		t.Fatalf("after removal: %+v", got)
	}
}
