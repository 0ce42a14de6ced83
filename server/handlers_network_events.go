package server

import (
	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver"
	"github.com/govirtd/govirtd/rpc"
)

func registerNetworkEventHandlers(t *Table) {
	t.ConnectNetworkEventRegisterAny(func(c *Call, a *libvirt.ConnectNetworkEventRegisterAnyArgs) (*libvirt.ConnectNetworkEventRegisterAnyRet, error) {
		if a.EventID != int32(libvirt.NetworkEventIDLifecycle) {
			return nil, compat.Errorf(libvirt.ErrInvalidArg, compat.FromNone, "unsupported network event ID %d", a.EventID)
		}
		var only *libvirt.UUID
		if len(a.Net) == 1 {
			only = &a.Net[0].UUID
		}
		return &libvirt.ConnectNetworkEventRegisterAnyRet{CallbackID: c.Conn.netEvents.register(a.EventID, only)}, nil
	})
	t.ConnectNetworkEventDeregisterAny(func(c *Call, a *libvirt.ConnectNetworkEventDeregisterAnyArgs) error {
		return c.Conn.netEvents.deregister(a.CallbackID)
	})
}

// deliverNetworkEvent is the network driver's event sink: it queues a
// NETWORK_EVENT_LIFECYCLE message for every matching callback.
func (s *Server) deliverNetworkEvent(ev driver.NetworkEvent) {
	registry := func(c *Conn) *objectEventRegistry { return &c.netEvents }
	s.deliverObjectEvent(registry, int32(libvirt.NetworkEventIDLifecycle), ev.Net.UUID, rpc.ProcNetworkEventLifecycle, func(id int32) any {
		return &libvirt.NetworkEventLifecycleMsg{CallbackID: id, Net: ev.Net, Event: ev.Event, Detail: ev.Detail}
	})
}
