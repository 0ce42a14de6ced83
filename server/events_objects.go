package server

import (
	"sync"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/rpc"
	"github.com/govirtd/govirtd/xdr"
)

// objectEventRegistry holds a connection's event callbacks for one kind of
// object other than domains — networks, storage pools, secrets — each
// registered with CONNECT_<KIND>_EVENT_REGISTER_ANY for one event ID and
// either every object or one, named by UUID. Callbacks are numbered per
// connection and kind from 0; clients treat the numbers as opaque.
type objectEventRegistry struct {
	mu        sync.Mutex
	next      int32
	callbacks map[int32]objectCallback
}

type objectCallback struct {
	eventID int32
	only    *libvirt.UUID // nil: every object
}

func (r *objectEventRegistry) register(eventID int32, only *libvirt.UUID) int32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.callbacks == nil {
		r.callbacks = map[int32]objectCallback{}
	}
	id := r.next
	r.next++
	r.callbacks[id] = objectCallback{eventID: eventID, only: only}
	return id
}

func (r *objectEventRegistry) deregister(id int32) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.callbacks[id]; !ok {
		return compat.Errorf(libvirt.ErrInvalidArg, compat.FromNone, "callback ID %d not registered", id)
	}
	delete(r.callbacks, id)
	return nil
}

func (r *objectEventRegistry) matching(eventID int32, uuid libvirt.UUID) []int32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ids []int32
	for id, cb := range r.callbacks {
		if cb.eventID == eventID && (cb.only == nil || *cb.only == uuid) {
			ids = append(ids, id)
		}
	}
	return ids
}

// deliverObjectEvent is the shared part of the object drivers' event
// sinks: for every connection, registry picks the kind's callbacks, and one
// message built by encode (for the callback's ID) is queued per match. It
// never blocks the driver: a client that does not read its events is cut
// off, as for domain events.
func (s *Server) deliverObjectEvent(registry func(*Conn) *objectEventRegistry, eventID int32, uuid libvirt.UUID,
	proc rpc.Procedure, encode func(callbackID int32) any) {
	s.mu.Lock()
	conns := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		for _, id := range registry(c).matching(eventID, uuid) {
			body, err := xdr.Marshal(encode(id))
			if err != nil {
				s.log.Error("encode event", "proc", proc, "err", err)
				continue
			}
			select {
			case c.eventQ <- queuedEvent{proc: proc, body: body}:
			default:
				go c.close("event queue overflow: client is not reading")
			}
		}
	}
}
