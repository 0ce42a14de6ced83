package server

//go:generate go run ../rpc/internal/procgen -mode server -o dispatch.gen.go

import (
	"fmt"
	"reflect"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/rpc"
	"github.com/govirtd/govirtd/xdr"
)

// Void stands for an absent argument or return structure: it encodes to
// nothing, and decoding it refuses any body.
type Void struct{}

// Table maps procedures of the remote program to handlers. The typed binding
// methods (one per procedure, generated into dispatch.gen.go) make a handler
// with the wrong argument or return type a compile error.
type Table struct {
	handlers map[rpc.Procedure]*handler
}

type handler struct {
	proc   rpc.Procedure
	decode func(body []byte) (any, error)
	invoke func(c *Call, args any) (any, error)
}

// NewTable returns an empty table.
func NewTable() *Table {
	return &Table{handlers: map[rpc.Procedure]*handler{}}
}

// Implemented lists the procedures that have a handler.
func (t *Table) Implemented() []rpc.Procedure {
	out := make([]rpc.Procedure, 0, len(t.handlers))
	for p := range t.handlers {
		out = append(out, p)
	}
	return out
}

func (t *Table) lookup(p rpc.Procedure) (*handler, bool) {
	h, ok := t.handlers[p]
	return h, ok
}

func bind[A, R any](t *Table, p rpc.Procedure, fn func(*Call, *A) (*R, error)) {
	if _, dup := t.handlers[p]; dup {
		panic(fmt.Sprintf("server: procedure %s bound twice", p))
	}
	t.handlers[p] = &handler{
		proc: p,
		decode: func(body []byte) (any, error) {
			a := new(A)
			// Many polling calls have no arguments; in a CPU profile under
			// ConnectGetLibVersion load, decoding their empty bodies through
			// the codec was 11% of the daemon's time (mostly growing the new
			// goroutine's stack), so they skip it.
			if _, void := any(a).(*Void); void {
				if len(body) != 0 {
					return nil, fmt.Errorf("%w: %d bytes for a call without arguments", xdr.ErrTrailing, len(body))
				}
				return a, nil
			}
			if err := xdr.Unmarshal(body, a); err != nil {
				return nil, err
			}
			return a, nil
		},
		invoke: func(c *Call, args any) (any, error) {
			r, err := fn(c, args.(*A))
			if err != nil {
				return nil, err
			}
			if r == nil {
				// A handler that forgets its result is a bug; say so rather
				// than sending a malformed reply.
				return nil, fmt.Errorf("handler of %s returned no %s", p, reflect.TypeFor[R]())
			}
			return r, nil
		},
	}
}

func withVoidRet[A any](fn func(*Call, *A) error) func(*Call, *A) (*Void, error) {
	return func(c *Call, a *A) (*Void, error) {
		if err := fn(c, a); err != nil {
			return nil, err
		}
		return &Void{}, nil
	}
}

func withVoidArgs[R any](fn func(*Call) (*R, error)) func(*Call, *Void) (*R, error) {
	return func(c *Call, _ *Void) (*R, error) { return fn(c) }
}

// QEMU program procedures (qemu_protocol.x) govirtd implements.
const qemuProcDomainMonitorCommand rpc.Procedure = 1 // QEMU_PROC_DOMAIN_MONITOR_COMMAND

// qemuProcAPI names the public API of each QEMU program procedure.
var qemuProcAPI = map[rpc.Procedure]string{
	qemuProcDomainMonitorCommand: "virDomainQemuMonitorCommand",
}

// procName names a call's procedure for logs, in its own program.
func procName(h rpc.Header) string {
	if h.Program == rpc.ProgramQEMU {
		if h.Procedure == qemuProcDomainMonitorCommand {
			return "QEMU_PROC_DOMAIN_MONITOR_COMMAND"
		}
		return fmt.Sprintf("QEMU_PROC_%d", uint32(h.Procedure))
	}
	return h.Procedure.String()
}

// QEMUTable is the dispatch table of the QEMU program. Its procedure
// numbers overlap the remote program's, hence a table of its own.
type QEMUTable struct{ t *Table }

// DomainMonitorCommand binds the handler of
// QEMU_PROC_DOMAIN_MONITOR_COMMAND (1).
func (q QEMUTable) DomainMonitorCommand(fn func(*Call, *libvirt.QEMUDomainMonitorCommandArgs) (*libvirt.QEMUDomainMonitorCommandRet, error)) {
	bind(q.t, qemuProcDomainMonitorCommand, fn)
}
