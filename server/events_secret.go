package server

import (
	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/driver"
	"github.com/govirtd/govirtd/rpc"
)

// deliverSecretEvent is the secret driver's event sink.
func (s *Server) deliverSecretEvent(ev driver.SecretEvent) {
	registry := func(c *Conn) *objectEventRegistry { return &c.secretEvents }
	switch ev.ID {
	case libvirt.SecretEventIDLifecycle:
		s.deliverObjectEvent(registry, int32(ev.ID), ev.Secret.UUID, rpc.ProcSecretEventLifecycle, func(id int32) any {
			return &libvirt.SecretEventLifecycleMsg{CallbackID: id, OptSecret: ev.Secret, Event: ev.Event, Detail: ev.Detail}
		})
	case libvirt.SecretEventIDValueChanged:
		s.deliverObjectEvent(registry, int32(ev.ID), ev.Secret.UUID, rpc.ProcSecretEventValueChanged, func(id int32) any {
			return &libvirt.SecretEventValueChangedMsg{CallbackID: id, OptSecret: ev.Secret}
		})
	}
}
