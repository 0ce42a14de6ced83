package server

import (
	"sync"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver"
	"github.com/govirtd/govirtd/rpc"
	"github.com/govirtd/govirtd/xdr"
)

// netEventRegistry holds a connection's network event callbacks
// (CONNECT_NETWORK_EVENT_REGISTER_ANY), numbered per connection from 0.
type netEventRegistry struct {
	mu        sync.Mutex
	next      int32
	callbacks map[int32]*libvirt.Network // nil value: every network
}

func registerNetworkEventHandlers(t *Table) {
	t.ConnectNetworkEventRegisterAny(func(c *Call, a *libvirt.ConnectNetworkEventRegisterAnyArgs) (*libvirt.ConnectNetworkEventRegisterAnyRet, error) {
		if a.EventID != int32(libvirt.NetworkEventIDLifecycle) {
			return nil, compat.Errorf(libvirt.ErrInvalidArg, compat.FromNone, "unsupported network event ID %d", a.EventID)
		}
		r := &c.Conn.netEvents
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.callbacks == nil {
			r.callbacks = map[int32]*libvirt.Network{}
		}
		var net *libvirt.Network
		if len(a.Net) == 1 {
			net = &a.Net[0]
		}
		id := r.next
		r.next++
		r.callbacks[id] = net
		return &libvirt.ConnectNetworkEventRegisterAnyRet{CallbackID: id}, nil
	})
	t.ConnectNetworkEventDeregisterAny(func(c *Call, a *libvirt.ConnectNetworkEventDeregisterAnyArgs) error {
		r := &c.Conn.netEvents
		r.mu.Lock()
		defer r.mu.Unlock()
		if _, ok := r.callbacks[a.CallbackID]; !ok {
			return compat.Errorf(libvirt.ErrInvalidArg, compat.FromNone, "callback ID %d not registered", a.CallbackID)
		}
		delete(r.callbacks, a.CallbackID)
		return nil
	})
}

// deliverNetworkEvent is the network driver's event sink: it queues a
// NETWORK_EVENT_LIFECYCLE message for every matching callback.
func (s *Server) deliverNetworkEvent(ev driver.NetworkEvent) {
	s.mu.Lock()
	conns := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		r := &c.netEvents
		r.mu.Lock()
		var ids []int32
		for id, net := range r.callbacks {
			if net == nil || net.UUID == ev.Net.UUID {
				ids = append(ids, id)
			}
		}
		r.mu.Unlock()
		for _, id := range ids {
			body, err := xdr.Marshal(&libvirt.NetworkEventLifecycleMsg{CallbackID: id, Net: ev.Net, Event: ev.Event, Detail: ev.Detail})
			if err != nil {
				continue
			}
			select {
			case c.eventQ <- queuedEvent{proc: rpc.ProcNetworkEventLifecycle, body: body}:
			default:
				go c.close("event queue overflow: client is not reading")
			}
		}
	}
}
