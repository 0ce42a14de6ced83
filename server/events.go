package server

import (
	"sync"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver"
	"github.com/govirtd/govirtd/rpc"
	"github.com/govirtd/govirtd/xdr"
)

// eventRegistry holds a connection's domain event callbacks. libvirt numbers
// callbacks per connection from 0, in registration order.
type eventRegistry struct {
	mu        sync.Mutex
	next      int32
	callbacks map[int32]eventCallback
}

type eventCallback struct {
	eventID int32
	dom     *libvirt.Domain // nil: every domain
}

func (r *eventRegistry) register(eventID int32, dom *libvirt.Domain) int32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.callbacks == nil {
		r.callbacks = map[int32]eventCallback{}
	}
	id := r.next
	r.next++
	r.callbacks[id] = eventCallback{eventID: eventID, dom: dom}
	return id
}

func (r *eventRegistry) deregister(id int32) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.callbacks[id]; !ok {
		return compat.Errorf(libvirt.ErrInvalidArg, compat.FromNone, "callback ID %d not registered", id)
	}
	delete(r.callbacks, id)
	return nil
}

// matching returns the callback ids registered for an event.
func (r *eventRegistry) matching(ev driver.Event) []int32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ids []int32
	for id, cb := range r.callbacks {
		if cb.eventID != int32(ev.ID) {
			continue
		}
		if cb.dom != nil && cb.dom.UUID != ev.Dom.UUID {
			continue
		}
		ids = append(ids, id)
	}
	return ids
}

// eventQueueLen bounds the events waiting for a slow client. A client
// that falls this far behind is not reading at all; it is disconnected
// rather than allowed to grow the daemon's memory without bound.
const eventQueueLen = 1024

// deliverEvent is the driver's event sink: it queues the event for every
// connection with a matching callback. It never blocks the driver.
func (s *Server) deliverEvent(ev driver.Event) {
	s.mu.Lock()
	conns := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		for _, id := range c.events.matching(ev) {
			proc, body, ok := encodeEvent(id, ev)
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

type queuedEvent struct {
	proc rpc.Procedure
	body []byte
}

// encodeEvent builds the callback-style event message for one callback.
func encodeEvent(callbackID int32, ev driver.Event) (rpc.Procedure, []byte, bool) {
	var proc rpc.Procedure
	var msg any
	switch ev.ID {
	case libvirt.DomainEventIDLifecycle:
		proc = rpc.ProcDomainEventCallbackLifecycle
		msg = &libvirt.DomainEventCallbackLifecycleMsg{CallbackID: callbackID, Msg: libvirt.DomainEventLifecycleMsg{Dom: ev.Dom, Event: ev.Event, Detail: ev.Detail}}
	case libvirt.DomainEventIDReboot:
		proc = rpc.ProcDomainEventCallbackReboot
		msg = &libvirt.DomainEventCallbackRebootMsg{CallbackID: callbackID, Msg: libvirt.DomainEventRebootMsg{Dom: ev.Dom}}
	case libvirt.DomainEventIDMigrationIteration:
		proc = rpc.ProcDomainEventCallbackMigrationIteration
		msg = &libvirt.DomainEventCallbackMigrationIterationMsg{CallbackID: callbackID, Dom: ev.Dom, Iteration: ev.Iteration}
	case libvirt.DomainEventIDJobCompleted:
		proc = rpc.ProcDomainEventCallbackJobCompleted
		msg = &libvirt.DomainEventCallbackJobCompletedMsg{CallbackID: callbackID, Dom: ev.Dom, Params: ev.Params}
	case libvirt.DomainEventIDIoError:
		proc = rpc.ProcDomainEventCallbackIOError
		msg = &libvirt.DomainEventCallbackIOErrorMsg{CallbackID: callbackID, Msg: libvirt.DomainEventIOErrorMsg{Dom: ev.Dom, SrcPath: ev.SrcPath, DevAlias: ev.DevAlias, Action: ev.IOErrorAction}}
	case libvirt.DomainEventIDIoErrorReason:
		proc = rpc.ProcDomainEventCallbackIOErrorReason
		msg = &libvirt.DomainEventCallbackIOErrorReasonMsg{CallbackID: callbackID, Msg: libvirt.DomainEventIOErrorReasonMsg{Dom: ev.Dom, SrcPath: ev.SrcPath, DevAlias: ev.DevAlias, Action: ev.IOErrorAction, Reason: ev.IOErrorReason}}
	case libvirt.DomainEventIDMetadataChange:
		proc = rpc.ProcDomainEventCallbackMetadataChange
		m := &libvirt.DomainEventCallbackMetadataChangeMsg{CallbackID: callbackID, Dom: ev.Dom, Type: ev.MetadataType}
		if ev.MetadataType == int32(libvirt.DomainMetadataElement) {
			m.Nsuri = libvirt.OptString{ev.MetadataURI}
		}
		msg = m
	default:
		return 0, nil, false
	}
	body, err := xdr.Marshal(msg)
	if err != nil {
		return 0, nil, false
	}
	return proc, body, true
}

// eventLoop writes queued events to the client, in order.
func (c *Conn) eventLoop() {
	for {
		select {
		case <-c.ctx.Done():
			return
		case ev := <-c.eventQ:
			// Events are MESSAGEs with serial 1, as libvirtd sends them.
			c.send(rpc.Header{Program: rpc.ProgramRemote, Version: rpc.ProtocolVersion, Procedure: ev.proc, Type: rpc.Message, Serial: 1, Status: rpc.OK}, ev.body)
		}
	}
}
