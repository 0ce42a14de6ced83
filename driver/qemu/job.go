package qemu

import (
	"context"
	"sync"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
)

// jobWait is how long an operation waits for another one on the same domain
// before giving up, as libvirt's QEMU_JOB_WAIT_TIME (30 s).
var jobWait = 30 * time.Second

// jobLock serializes state-changing operations on one domain. It is a
// channel rather than a mutex so that waiting can time out (a stuck monitor
// must not hang every later client) and report who holds it.
type jobLock struct {
	sem    chan struct{}
	mu     sync.Mutex
	holder string
}

func newJobLock() *jobLock { return &jobLock{sem: make(chan struct{}, 1)} }

// acquire takes the lock for the job named what (e.g. "virDomainCreate").
func (j *jobLock) acquire(ctx context.Context, what string) (release func(), err error) {
	t := time.NewTimer(jobWait)
	defer t.Stop()
	select {
	case j.sem <- struct{}{}:
		j.mu.Lock()
		j.holder = what
		j.mu.Unlock()
		return func() {
			j.mu.Lock()
			j.holder = ""
			j.mu.Unlock()
			<-j.sem
		}, nil
	case <-t.C:
		j.mu.Lock()
		holder := j.holder
		j.mu.Unlock()
		return nil, compat.Errorf(libvirt.ErrOperationTimeout, compat.FromQEMU, "cannot acquire state change lock (held by monitor=%s)", holder)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
