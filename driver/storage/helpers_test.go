package storage

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver"
)

var ctx = context.Background()

// env is a driver on a temporary config directory, with a place for pool
// targets and a record of the events it sent.
type env struct {
	t      *testing.T
	cfg    string
	root   string
	d      *Driver
	mu     sync.Mutex
	events []driver.StoragePoolEvent
}

func newEnv(t *testing.T) *env {
	t.Helper()
	base := t.TempDir()
	e := &env{t: t, cfg: filepath.Join(base, "storage"), root: filepath.Join(base, "pools")}
	e.d = e.open()
	return e
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// open makes a driver on the env's config directory, as a daemon start.
func (e *env) open() *Driver {
	e.t.Helper()
	d, err := New(e.cfg, quiet())
	if err != nil {
		e.t.Fatalf("New: %v", err)
	}
	d.SetStoragePoolEventSink(func(ev driver.StoragePoolEvent) {
		e.mu.Lock()
		e.events = append(e.events, ev)
		e.mu.Unlock()
	})
	return d
}

// takeEvents returns the events since the last call, as "pool:EVENT".
func (e *env) takeEvents() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	names := []string{"DEFINED", "UNDEFINED", "STARTED", "STOPPED", "CREATED", "DELETED"}
	var out []string
	for _, ev := range e.events {
		if ev.ID == libvirt.StoragePoolEventIDRefresh {
			out = append(out, ev.Pool.Name+":REFRESH")
		} else {
			out = append(out, ev.Pool.Name+":"+names[ev.Event])
		}
	}
	e.events = nil
	return out
}

func poolXML(name, path string, extra string) string {
	return fmt.Sprintf("<pool type='dir'><name>%s</name><target><path>%s</path>%s</target></pool>", name, path, extra)
}

// startPool defines, builds and starts a dir pool under e.root.
func (e *env) startPool(name string) libvirt.StoragePool {
	e.t.Helper()
	p, err := e.d.StoragePoolDefineXML(ctx, poolXML(name, filepath.Join(e.root, name), ""), 0)
	if err != nil {
		e.t.Fatalf("define %s: %v", name, err)
	}
	if err := e.d.StoragePoolCreate(ctx, p, libvirt.StoragePoolCreateWithBuild); err != nil {
		e.t.Fatalf("start %s: %v", name, err)
	}
	return p
}

func (e *env) createVol(p libvirt.StoragePool, doc string, flags libvirt.StorageVolCreateFlags) libvirt.StorageVol {
	e.t.Helper()
	v, err := e.d.StorageVolCreateXML(ctx, p, doc, flags)
	if err != nil {
		e.t.Fatalf("create volume: %v", err)
	}
	return v
}

// wantErr checks a libvirt error's code and, if sub is not empty, that
// its message contains sub.
func wantErr(t *testing.T, err error, code libvirt.ErrorNumber, sub string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want code %d (%s)", code, sub)
	}
	le := compat.As(err)
	if le.Code != code {
		t.Fatalf("error %q: code %d, want %d", le.Message(), le.Code, code)
	}
	if le.Code != libvirt.ErrInternalError && le.Err != nil && le.Domain == compat.FromNone {
		t.Fatalf("error %q is not a libvirt error", err)
	}
	if sub != "" && !strings.Contains(le.Message(), sub) {
		t.Fatalf("error %q does not contain %q", le.Message(), sub)
	}
}

func volXML(name string, capacity string, format string, extra string) string {
	if !strings.HasPrefix(capacity, "<") {
		capacity = "<capacity>" + capacity + "</capacity>"
	}
	return fmt.Sprintf("<volume><name>%s</name>%s%s<target><format type='%s'/></target></volume>", name, capacity, extra, format)
}
