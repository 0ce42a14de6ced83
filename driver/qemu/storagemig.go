package qemu

import (
	"context"
	"net"
	"net/url"
	"strconv"
	"sync"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/compat/migcookie"
	"github.com/govirtd/govirtd/compat/migparams"
	"github.com/govirtd/govirtd/driver/qemu/migration"
	"github.com/govirtd/govirtd/driver/qemu/qmp"
	"github.com/govirtd/govirtd/driver/qemu/storagecopy"
)

// storageMig is a storage migration's state on one host: the disks it
// copies and what it has set up, so that each step can undo its part.
// The work itself is package storagecopy's.
type storageMig struct {
	disks []storagecopy.Disk
	// created are the images the destination made for the copy; a
	// failed migration removes them (and no other file).
	created []string
	// nbdPort is the destination's NBD server port (reserved).
	nbdPort int

	mu sync.Mutex
	// cancel ends the source's wait for the mirrors (domjobabort).
	cancel   context.CancelFunc
	aborted  bool
	progress storagecopy.Progress
}

func (s *storageMig) setProgress(p storagecopy.Progress) {
	s.mu.Lock()
	s.progress = p
	s.mu.Unlock()
}

func (s *storageMig) snapshot() storagecopy.Progress {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.progress
}

// abortCopy is domjobabort during the disk copy: it reports whether a
// copy was waiting to be stopped.
func (s *storageMig) abortCopy() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancel == nil {
		return false
	}
	s.aborted = true
	s.cancel()
	return true
}

// storageFlags reports whether flags ask for a storage migration and
// whether it is incremental (--copy-storage-inc).
func storageFlags(flags uint32) (copyStorage, incremental bool) {
	f := migparams.Flags(flags)
	return f&(migparams.NonSharedDisk|migparams.NonSharedInc) != 0, f&migparams.NonSharedInc != 0
}

// beginStorage is Begin's part (source): choose the disks and announce
// them, with their capacities, in the cookie's <nbd> element.
func (d *Driver) beginStorage(dom *domain, m *migState, live *libvirtxml.Domain) (*migcookie.NBD, error) {
	disks, err := storagecopy.Select(live, m.params.MigrateDisks)
	if err != nil {
		return nil, err
	}
	nbd := &migcookie.NBD{}
	if len(disks) > 0 {
		mon, err := dom.monitor()
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(d.ctx, 10*time.Second)
		defer cancel()
		caps, err := storagecopy.Capacities(ctx, mon, disks)
		if err != nil {
			return nil, err
		}
		for _, disk := range disks {
			nbd.Disks = append(nbd.Disks, migcookie.NBDDisk{Target: disk.Target, Capacity: caps[disk.Target]})
		}
	}
	m.storage = &storageMig{disks: disks}
	return nbd, nil
}

// prepareStorageImages is Prepare's part before QEMU starts
// (destination): create the images the source announced that are missing.
func (d *Driver) prepareStorageImages(ctx context.Context, m *migState, def *libvirtxml.Domain, nbd *migcookie.NBD, incremental bool) error {
	targets := make([]string, len(nbd.Disks))
	capacity := map[string]uint64{}
	for i, disk := range nbd.Disks {
		targets[i] = disk.Target
		capacity[disk.Target] = disk.Capacity
	}
	images, err := storagecopy.Images(def, targets)
	if err != nil {
		return err
	}
	created, err := storagecopy.Precreate(ctx, images, capacity, incremental)
	if err != nil {
		return err
	}
	m.storage = &storageMig{created: created}
	m.job.CreatedImages = created
	return nil
}

// serveStorage is Prepare's part once QEMU waits for the migration
// (destination): export the disks over NBD on the migration address, on
// --disks-port/--disks-uri or a port of the migration range, and say
// where in the cookie.
func (d *Driver) serveStorage(ctx context.Context, dom *domain, m *migState, mon *qmp.Monitor, nbd *migcookie.NBD) (*migcookie.NBD, error) {
	dom.mu.Lock()
	live := dom.live
	dom.mu.Unlock()
	targets := make([]string, len(nbd.Disks))
	for i, disk := range nbd.Disks {
		targets[i] = disk.Target
	}
	disks, err := storagecopy.Select(live, targets)
	if err != nil {
		return nil, err
	}
	m.storage.disks = disks
	addr := qmp.NBDAddress{Host: d.migrationListenAddress(m.params), Port: m.params.DisksPort}
	if m.params.DisksURI != "" {
		if addr, err = disksURI(m.params.DisksURI); err != nil {
			return nil, err
		}
	}
	if addr.Port < 0 || addr.Port > 65535 {
		return nil, compat.Errorf(libvirt.ErrInvalidArg, compat.FromQEMU, "nbd port must be in range 0-65535")
	}
	if addr.Socket == "" && addr.Port == 0 {
		// A second port of the migration range, as libvirt takes one.
		if addr.Port, err = d.reserveMigrationPort(&migparams.Params{ListenAddress: addr.Host}); err != nil {
			return nil, err
		}
		m.storage.nbdPort = addr.Port
	}
	tlsCreds := ""
	if migparams.Flags(m.job.Flags)&migparams.TLS != 0 {
		if addr.Socket != "" {
			return nil, compat.Errorf(libvirt.ErrOperationUnsupported, compat.FromQEMU, "NBD migration with TLS is not supported over UNIX socket")
		}
		// The migration's server credentials, added with the stream's.
		tlsCreds = migrationTLSAlias
	}
	if err := storagecopy.Serve(ctx, mon, addr, tlsCreds, disks); err != nil {
		return nil, compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "%v", err)
	}
	// A unix socket has no port to tell (<nbd/>).
	port := addr.Port
	return &migcookie.NBD{Port: port}, nil
}

// disksURI parses --disks-uri: tcp://HOST[:PORT] or unix:///PATH, with
// libvirt's errors.
func disksURI(s string) (qmp.NBDAddress, error) {
	var a qmp.NBDAddress
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" {
		return a, compat.Errorf(libvirt.ErrInvalidArg, compat.FromQEMU, "No URI scheme specified: %s", s)
	}
	switch u.Scheme {
	case "tcp":
		if u.Hostname() == "" {
			return a, compat.Errorf(libvirt.ErrInvalidArg, compat.FromQEMU, "URI with tcp scheme did not provide a server part: %s", s)
		}
		a.Host = u.Hostname()
		if p := u.Port(); p != "" {
			if a.Port, err = strconv.Atoi(p); err != nil {
				return a, compat.Errorf(libvirt.ErrInvalidArg, compat.FromQEMU, "nbd port must be in range 0-65535")
			}
		}
	case "unix":
		if u.Path == "" {
			return a, compat.Errorf(libvirt.ErrInvalidArg, compat.FromQEMU, "UNIX disks URI does not include path")
		}
		a.Socket = u.Path
	default:
		return a, compat.Errorf(libvirt.ErrInvalidArg, compat.FromQEMU, "Unsupported scheme in disks URI: %s", u.Scheme)
	}
	return a, nil
}

// releaseStorage undoes the destination's set-up after the migration:
// the port always, the created images only when it failed (call after
// QEMU is gone).
func (d *Driver) releaseStorage(m *migState, failed bool) {
	s := m.storage
	if s == nil {
		return
	}
	if s.nbdPort != 0 {
		d.releaseMigrationPort(s.nbdPort)
		s.nbdPort = 0
	}
	if failed {
		storagecopy.RemoveCreated(s.created)
		s.created = nil
		m.job.CreatedImages = nil
	}
}

// recoverStorage ends what a storage migration left behind when the
// daemon died during it: on the destination the images it created (the
// incoming guest is dropped); on the source the mirrors, completed
// cleanly when QEMU finished sending the guest (the destination may run
// it: its copy must be whole), abandoned otherwise.
func (d *Driver) recoverStorage(ctx context.Context, dom *domain, m *migState, sent bool) {
	if m.job.Role == migration.Destination {
		m.storage = &storageMig{created: m.job.CreatedImages}
		return
	}
	if copyStorage, _ := storageFlags(uint32(m.job.Flags)); !copyStorage {
		return
	}
	mon, err := dom.monitor()
	if err != nil {
		return
	}
	left, err := storagecopy.Leftovers(ctx, mon)
	if err != nil || len(left) == 0 {
		return
	}
	if sent {
		err = storagecopy.Complete(ctx, mon, left)
	} else {
		err = storagecopy.Abort(ctx, mon, left)
	}
	d.log.Warn("ended the disk mirrors of an interrupted storage migration", "domain", dom.name, "completed", sent, "err", err)
}

// stopServingStorage is Finish's part before the guest resumes
// (destination).
func (d *Driver) stopServingStorage(ctx context.Context, dom *domain, m *migState, mon *qmp.Monitor) {
	if m.storage == nil || len(m.storage.disks) == 0 {
		return
	}
	if err := storagecopy.StopServing(ctx, mon); err != nil {
		d.log.Warn("Unable to stop NBD server", "domain", dom.name, "err", err)
	}
}

// copyStorage is Perform's part before the memory moves (source): mirror
// every disk into the destination's exports and wait until all are in
// sync. domjobabort ends the wait; on any failure the mirrors are gone
// and the disks untouched when it returns.
func (d *Driver) copyStorage(dom *domain, m *migState, mon *qmp.Monitor, uri string, flags uint32) error {
	s := m.storage
	if s == nil || len(s.disks) == 0 {
		return nil
	}
	peer := m.peerCookie
	if peer == nil || peer.NBD == nil {
		return compat.Errorf(libvirt.ErrOperationUnsupported, compat.FromQEMU, "the destination offered no NBD server for storage migration")
	}
	host, _, err := migrationHost(uri)
	if err != nil {
		return err
	}
	addr := qmp.NBDAddress{Host: host, Port: peer.NBD.Port}
	if m.params.DisksURI != "" {
		u, err := disksURI(m.params.DisksURI)
		if err != nil {
			return err
		}
		switch {
		case u.Socket != "":
			if migparams.Flags(flags)&migparams.TLS != 0 {
				return compat.Errorf(libvirt.ErrOperationUnsupported, compat.FromQEMU, "NBD migration with TLS is not supported over UNIX socket")
			}
			addr = u
		default:
			addr.Host = u.Host
			if u.Port != 0 {
				addr.Port = u.Port
			}
		}
	}
	if addr.Socket == "" && addr.Port == 0 {
		return compat.Errorf(libvirt.ErrOperationUnsupported, compat.FromQEMU, "the destination offered no NBD server port for storage migration")
	}
	_, incremental := storageFlags(flags)
	var speed int64
	if bw := m.params.Bandwidth; bw > 0 {
		speed = int64(bw) << 20
	}
	ctx, cancel := context.WithCancel(d.ctx)
	defer cancel()
	s.mu.Lock()
	s.cancel = cancel
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.cancel = nil
		s.mu.Unlock()
	}()
	o := storagecopy.MirrorOptions{Addr: addr, Speed: speed, Shallow: incremental,
		SyncWrites: migparams.Flags(flags)&migparams.NonSharedSynchronousWrites != 0}
	if migparams.Flags(flags)&migparams.TLS != 0 {
		o.TLSCreds, o.TLSHostname = migrationTLSAlias, host
	}
	if err := storagecopy.Mirror(ctx, mon, s.disks, o); err != nil {
		return err
	}
	err = storagecopy.WaitReady(ctx, mon, s.disks, 100*time.Millisecond, s.setProgress)
	if err == nil {
		err = d.fire("perform-nbd-copy", dom)
	}
	if err != nil {
		storagecopy.Abort(context.Background(), mon, s.disks)
		s.mu.Lock()
		aborted := s.aborted
		s.mu.Unlock()
		if aborted {
			return errMigrationAborted()
		}
		return err
	}
	return nil
}

// endStorageCopy ends the source's mirrors after the memory migration:
// cleanly when it succeeded (the guest is paused, so the destination's
// copy becomes exact), abandoned when it failed.
func (d *Driver) endStorageCopy(m *migState, mon *qmp.Monitor, migrated bool) error {
	s := m.storage
	if s == nil || len(s.disks) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(d.ctx, time.Minute)
	defer cancel()
	if !migrated {
		return storagecopy.Abort(ctx, mon, s.disks)
	}
	if p, err := storagecopy.Query(ctx, mon, s.disks); err == nil {
		s.setProgress(p)
	}
	return storagecopy.Complete(ctx, mon, s.disks)
}

// migrationHost is the host part of a tcp migration URI.
func migrationHost(uri string) (string, int, error) {
	addr, ok := tcpMigrationAddr(uri)
	if !ok {
		return "", 0, compat.Errorf(libvirt.ErrOperationUnsupported, compat.FromQEMU, "storage migration needs a tcp migration URI, not %s", uri)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, compat.Errorf(libvirt.ErrInvalidArg, compat.FromQEMU, "unable to parse migration URI %s", uri)
	}
	p, _ := strconv.Atoi(port)
	return host, p, nil
}

// withDisks adds the disk copy's progress to job statistics: the disk_*
// fields, and the data_* totals that are memory plus disks.
func withDisks(st *migparams.JobStats, m *migState) *migparams.JobStats {
	if m == nil || m.storage == nil || len(m.storage.disks) == 0 {
		return st
	}
	p := m.storage.snapshot()
	st.DiskTotal, st.DiskProcessed, st.DiskRemaining = p.Total, p.Processed, p.Remaining
	st.DataTotal = st.MemoryTotal + st.DiskTotal
	st.DataProcessed = st.MemoryProcessed + st.DiskProcessed
	st.DataRemaining = st.MemoryRemaining + st.DiskRemaining
	return st
}
