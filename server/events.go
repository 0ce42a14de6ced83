package server

import (
	"sync"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
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
