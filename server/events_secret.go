package server

import (
	"sync"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver"
	"github.com/govirtd/govirtd/rpc"
	"github.com/govirtd/govirtd/xdr"
)

// secretEventRegistry holds a connection's secret event callbacks
// (CONNECT_SECRET_EVENT_REGISTER_ANY). They are numbered apart from the
// domain ones, as libvirt's secret driver keeps its own event state.
type secretEventRegistry struct {
	mu        sync.Mutex
	next      int32
	callbacks map[int32]secretCallback
}

type secretCallback struct {
	eventID int32
	secret  *libvirt.UUID // nil: every secret
}

func (r *secretEventRegistry) register(eventID int32, secret *libvirt.UUID) int32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.callbacks == nil {
		r.callbacks = map[int32]secretCallback{}
	}
	id := r.next
	r.next++
	r.callbacks[id] = secretCallback{eventID: eventID, secret: secret}
	return id
}

func (r *secretEventRegistry) deregister(id int32) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.callbacks[id]; !ok {
		return compat.Errorf(libvirt.ErrInvalidArg, compat.FromNone, "callback ID %d not registered", id)
	}
	delete(r.callbacks, id)
	return nil
}

func (r *secretEventRegistry) matching(ev driver.SecretEvent) []int32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ids []int32
	for id, cb := range r.callbacks {
		if cb.eventID == int32(ev.ID) && (cb.secret == nil || *cb.secret == ev.Secret.UUID) {
			ids = append(ids, id)
		}
	}
	return ids
}

// deliverSecretEvent is the secret driver's event sink: like deliverEvent,
// it queues the event for every connection with a matching callback and
// never blocks the driver.
func (s *Server) deliverSecretEvent(ev driver.SecretEvent) {
	s.mu.Lock()
	conns := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		for _, id := range c.secretEvents.matching(ev) {
			proc, body, ok := encodeSecretEvent(id, ev)
			if !ok {
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

func encodeSecretEvent(callbackID int32, ev driver.SecretEvent) (rpc.Procedure, []byte, bool) {
	var proc rpc.Procedure
	var msg any
	switch ev.ID {
	case libvirt.SecretEventIDLifecycle:
		proc = rpc.ProcSecretEventLifecycle
		msg = &libvirt.SecretEventLifecycleMsg{CallbackID: callbackID, OptSecret: ev.Secret, Event: ev.Event, Detail: ev.Detail}
	case libvirt.SecretEventIDValueChanged:
		proc = rpc.ProcSecretEventValueChanged
		msg = &libvirt.SecretEventValueChangedMsg{CallbackID: callbackID, OptSecret: ev.Secret}
	default:
		return 0, nil, false
	}
	body, err := xdr.Marshal(msg)
	if err != nil {
		return 0, nil, false
	}
	return proc, body, true
}
