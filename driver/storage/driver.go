// Package storage is govirtd's storage driver, as libvirt 9.0's
// src/storage with its 'dir' backend: pools that are directories of the
// host, and volumes that are the files in them (raw or qcow2).
//
// Persistent pool definitions are kept as NAME.xml in the configuration
// directory, autostart as symlinks in its autostart/ subdirectory, as
// libvirt's /etc/libvirt/storage. A pool's volumes are what a scan of its
// directory found (at start and refresh), plus what the driver created
// since, as in libvirt.
package storage

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver"
)

// Driver is the storage driver. It implements driver.Storage.
type Driver struct {
	dir string
	log *slog.Logger
	// qemuImg is the qemu-img program.
	qemuImg string

	mu    sync.Mutex
	pools map[string]*pool // by name
	sink  func(driver.StoragePoolEvent)
}

var _ driver.Storage = (*Driver)(nil)

// pool is one storage pool.
type pool struct {
	// def is the pool's definition; while the pool runs, its capacity,
	// allocation, available and target permissions are the live ones.
	def *poolDef
	// newDef is a definition given while the pool ran: it becomes def
	// when the pool stops, as libvirt's newDef.
	newDef     *poolDef
	active     bool
	persistent bool
	autostart  bool
	// vols are the volumes, by name, while the pool is active.
	vols map[string]*volume
	// building are the names of volumes being created, reserved so that
	// nobody else takes them; the volumes are not visible yet.
	building map[string]bool
	// jobs counts the operations running on the pool's volumes without
	// the driver's lock (libvirt's asyncjobs).
	jobs int
}

func (p *pool) ref() libvirt.StoragePool {
	return libvirt.StoragePool{Name: p.def.Name, UUID: p.def.UUID}
}

// New opens the driver on configDir (libvirt's /etc/libvirt/storage) and
// loads the persistent pools defined there. The pools that ran when the
// daemon stopped (in this boot of the host) run again; the others are
// inactive until Autostart starts the autostart ones.
func New(configDir string, log *slog.Logger) (*Driver, error) {
	if log == nil {
		log = slog.Default()
	}
	d := &Driver{dir: configDir, log: log, qemuImg: "qemu-img", pools: map[string]*pool{}}
	for _, dir := range []string{configDir, d.autostartDir()} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create storage config directory: %w", err)
		}
		if err := os.Chmod(dir, 0o700); err != nil {
			return nil, fmt.Errorf("restrict storage config directory: %w", err)
		}
	}
	if err := d.loadConfigs(); err != nil {
		return nil, err
	}
	if err := d.loadStates(); err != nil {
		return nil, err
	}
	return d, nil
}

// Autostart starts the pools marked autostart, as libvirt does at daemon
// start. A pool that cannot start is logged and left inactive.
func (d *Driver) Autostart(ctx context.Context) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, p := range d.sorted() {
		if !p.autostart || p.active {
			continue
		}
		if err := d.startLocked(p); err != nil {
			d.log.Warn("failed to autostart storage pool", "pool", p.def.Name, "err", err)
			continue
		}
		d.log.Info("storage pool autostarted", "pool", p.def.Name)
	}
}

func (d *Driver) autostartDir() string { return filepath.Join(d.dir, "autostart") }

// SetStoragePoolEventSink implements driver.Storage.
func (d *Driver) SetStoragePoolEventSink(sink func(driver.StoragePoolEvent)) {
	d.mu.Lock()
	d.sink = sink
	d.mu.Unlock()
}

// emitLifecycle delivers a lifecycle event; d.mu is held, so events reach
// clients in the order the changes happened.
func (d *Driver) emitLifecycle(p *pool, ev libvirt.StoragePoolEventLifecycleType) {
	if d.sink != nil {
		d.sink(driver.StoragePoolEvent{ID: libvirt.StoragePoolEventIDLifecycle, Pool: p.ref(), Event: int32(ev)})
	}
}

// emitRefresh delivers a refresh event; d.mu is held.
func (d *Driver) emitRefresh(p *pool) {
	if d.sink != nil {
		d.sink(driver.StoragePoolEvent{ID: libvirt.StoragePoolEventIDRefresh, Pool: p.ref()})
	}
}

// sorted lists the pools by name; d.mu is held.
func (d *Driver) sorted() []*pool {
	out := make([]*pool, 0, len(d.pools))
	for _, p := range d.pools {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].def.Name < out[j].def.Name })
	return out
}

// byUUID finds a pool by UUID; d.mu is held.
func (d *Driver) byUUID(u libvirt.UUID) *pool {
	for _, p := range d.pools {
		if p.def.UUID == u {
			return p
		}
	}
	return nil
}

// get finds the pool a client names, by UUID as libvirt does; d.mu is
// held.
func (d *Driver) get(ref libvirt.StoragePool) (*pool, error) {
	if p := d.byUUID(ref.UUID); p != nil {
		return p, nil
	}
	return nil, compat.Errorf(libvirt.ErrNoStoragePool, compat.FromStorage,
		"no storage pool with matching uuid '%s' (%s)", compat.FormatUUID(ref.UUID), ref.Name)
}

// getByName finds a pool by name; d.mu is held.
func (d *Driver) getByName(name string) (*pool, error) {
	if p, ok := d.pools[name]; ok {
		return p, nil
	}
	return nil, compat.Errorf(libvirt.ErrNoStoragePool, compat.FromStorage, "no storage pool with matching name '%s'", name)
}

// getActive finds a pool that must be running; d.mu is held.
func (d *Driver) getActive(ref libvirt.StoragePool) (*pool, error) {
	p, err := d.get(ref)
	if err != nil {
		return nil, err
	}
	if !p.active {
		return nil, notActive(p)
	}
	return p, nil
}

func notActive(p *pool) error {
	return compat.Errorf(libvirt.ErrOperationInvalid, compat.FromStorage, "storage pool '%s' is not active", p.def.Name)
}

// unsupportedFlags is virCheckFlags' error, which libvirt words whole.
func unsupportedFlags(flags uint32, fn string) error {
	return &compat.Error{Code: libvirt.ErrInvalidArg, Domain: compat.FromStorage, Int1: -1, Verbatim: true,
		Detail: fmt.Sprintf("unsupported flags (0x%x) in function %s", flags, fn)}
}

// exclusiveFlags is VIR_EXCLUSIVE_FLAGS_RET's error.
func exclusiveFlags(a, b string) error {
	return compat.Errorf(libvirt.ErrInvalidArg, compat.FromStorage, "Flags '%s' and '%s' are mutually exclusive", a, b)
}

// systemError is virReportSystemError: the message, then errno's text.
func systemError(err error, format string, args ...any) error {
	errno := int32(-1)
	if e := errnoOf(err); e != 0 {
		errno = int32(e)
	}
	return &compat.Error{Code: libvirt.ErrSystemError, Domain: compat.FromStorage, Int1: errno, Err: err,
		Detail: fmt.Sprintf(format, args...) + ": " + errnoText(err)}
}
