package server

import (
	"errors"
	"io"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver"
	"github.com/govirtd/govirtd/rpc"
)

// registerStorageStreamHandlers binds vol-upload and vol-download: the
// call opens the volume and a stream, and a goroutine moves the bytes
// after the reply, as libvirt's daemon does.
func registerStorageStreamHandlers(t *Table, st driver.Storage) {
	t.StorageVolDownload(func(c *Call, a *libvirt.StorageVolDownloadArgs) error {
		sparse := a.Flags&libvirt.StorageVolDownloadSparseStream != 0
		r, err := st.StorageVolDownload(c.Ctx, a.Vol, a.Offset, a.Length, a.Flags)
		if err != nil {
			return err
		}
		s, err := c.OpenSendStream(sparse)
		if err != nil {
			r.Close()
			return err
		}
		go sendVolume(s, r)
		return nil
	})
	t.StorageVolUpload(func(c *Call, a *libvirt.StorageVolUploadArgs) error {
		w, err := st.StorageVolUpload(c.Ctx, a.Vol, a.Offset, a.Length, a.Flags)
		if err != nil {
			return err
		}
		var s *Stream
		if a.Flags&libvirt.StorageVolUploadSparseStream != 0 {
			s, err = c.OpenSparseStream()
		} else {
			s, err = c.OpenStream()
		}
		if err != nil {
			w.Abort()
			return err
		}
		go receiveVolume(s, w)
		return nil
	})
}

// sendVolume streams a volume to the client: data, holes (sparse
// downloads), then the end of the data, or the driver's error.
func sendVolume(s *Stream, r driver.VolumeReader) {
	defer r.Close()
	buf := make([]byte, streamChunkBytes)
	for {
		n, hole, err := r.ReadSegment(buf)
		switch {
		case n > 0:
			if s.Send(buf[:n]) != nil {
				return // the client aborted or went away
			}
		case hole > 0:
			if s.SendHole(hole) != nil {
				return
			}
		}
		if errors.Is(err, io.EOF) {
			_ = s.SendEOF()
			return
		}
		if err != nil {
			s.SendError(compat.Errorf(libvirt.ErrOperationFailed, compat.FromStorage, "cannot read volume: %v", err))
			return
		}
	}
}

// receiveVolume writes what the client uploads into the volume; the
// client's STREAM OK is confirmed only once everything reached the disk.
func receiveVolume(s *Stream, w driver.VolumeWriter) {
	buf := make([]byte, streamChunkBytes)
	for {
		n, hole, err := s.ReadSegment(buf)
		var werr error
		switch {
		case n > 0:
			_, werr = w.Write(buf[:n])
		case hole > 0:
			werr = w.Hole(hole)
		}
		if werr != nil {
			w.Abort()
			s.CloseWithError(asStorageError(werr))
			return
		}
		if errors.Is(err, io.EOF) {
			s.CloseWithError(asStorageError(w.Close()))
			return
		}
		if err != nil {
			// The client aborted, or the connection went away.
			w.Abort()
			s.CloseWithError(err)
			return
		}
	}
}

// asStorageError keeps a driver's libvirt error and makes any other one a
// storage error.
func asStorageError(err error) error {
	if err == nil {
		return nil
	}
	var le *compat.Error
	if errors.As(err, &le) {
		return err
	}
	return compat.Errorf(libvirt.ErrOperationFailed, compat.FromStorage, "%v", err)
}

func registerStoragePoolEventHandlers(t *Table) {
	t.ConnectStoragePoolEventRegisterAny(func(c *Call, a *libvirt.ConnectStoragePoolEventRegisterAnyArgs) (*libvirt.ConnectStoragePoolEventRegisterAnyRet, error) {
		if a.EventID < 0 || a.EventID > int32(libvirt.StoragePoolEventIDRefresh) {
			return nil, compat.Errorf(libvirt.ErrInvalidArg, compat.FromNone, "unsupported storage pool event ID %d", a.EventID)
		}
		var only *libvirt.UUID
		if len(a.Pool) == 1 {
			only = &a.Pool[0].UUID
		}
		return &libvirt.ConnectStoragePoolEventRegisterAnyRet{CallbackID: c.Conn.poolEvents.register(a.EventID, only)}, nil
	})
	t.ConnectStoragePoolEventDeregisterAny(func(c *Call, a *libvirt.ConnectStoragePoolEventDeregisterAnyArgs) error {
		return c.Conn.poolEvents.deregister(a.CallbackID)
	})
}

// deliverStoragePoolEvent is the storage driver's event sink.
func (s *Server) deliverStoragePoolEvent(ev driver.StoragePoolEvent) {
	registry := func(c *Conn) *objectEventRegistry { return &c.poolEvents }
	switch ev.ID {
	case libvirt.StoragePoolEventIDLifecycle:
		s.deliverObjectEvent(registry, int32(ev.ID), ev.Pool.UUID, rpc.ProcStoragePoolEventLifecycle, func(id int32) any {
			return &libvirt.StoragePoolEventLifecycleMsg{CallbackID: id, Pool: ev.Pool, Event: ev.Event, Detail: ev.Detail}
		})
	case libvirt.StoragePoolEventIDRefresh:
		s.deliverObjectEvent(registry, int32(ev.ID), ev.Pool.UUID, rpc.ProcStoragePoolEventRefresh, func(id int32) any {
			return &libvirt.StoragePoolEventRefreshMsg{CallbackID: id, Pool: ev.Pool}
		})
	}
}
