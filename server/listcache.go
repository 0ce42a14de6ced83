package server

import (
	"slices"
	"sync"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/xdr"
)

// listReplies remembers the last encoded ConnectListAllDomains reply per
// filter. Management apps poll the full list every few seconds and it
// rarely changes, while encoding a thousand domains took ~40% of the
// daemon's CPU for that call in a profile. A reply is reused only when the
// driver returned exactly the same domains (name, UUID, id, order), so it is
// never stale; comparing costs a fraction of encoding.
type listReplies struct {
	mu   sync.Mutex
	last map[listKey]*listReply
}

type listKey struct {
	flags       libvirt.ConnectListAllDomainsFlags
	needResults bool
}

type listReply struct {
	doms []libvirt.Domain
	body []byte
}

// maxListFilters bounds the memo: clients use a handful of filters.
const maxListFilters = 16

// body returns the encoded reply for doms under k, encoding it only when
// the domains differ from the last reply under k.
func (lr *listReplies) body(k listKey, doms []libvirt.Domain, ret *libvirt.ConnectListAllDomainsRet) ([]byte, error) {
	lr.mu.Lock()
	prev := lr.last[k]
	lr.mu.Unlock()
	if prev != nil && slices.Equal(prev.doms, doms) {
		return prev.body, nil
	}
	body, err := xdr.Marshal(ret)
	if err != nil {
		return nil, err
	}
	lr.mu.Lock()
	defer lr.mu.Unlock()
	if lr.last == nil || len(lr.last) >= maxListFilters {
		lr.last = map[listKey]*listReply{}
	}
	lr.last[k] = &listReply{doms: doms, body: body}
	return body, nil
}
