package qmp

import (
	"context"
	"strconv"
)

// The commands of storage migration: the destination exports its disks
// over NBD, the source mirrors its disks into those exports.

// NBDAddress is where an NBD server listens: Host and Port, or a unix
// Socket.
type NBDAddress struct {
	Host   string
	Port   int
	Socket string
}

// NBDServerStart starts QEMU's NBD server listening on addr
// ("nbd-server-start"), in TLS with the credentials object tlsCreds
// unless it is "".
func (m *Monitor) NBDServerStart(ctx context.Context, addr NBDAddress, tlsCreds string) error {
	type data struct {
		Host string `json:"host,omitempty"`
		Port string `json:"port,omitempty"`
		Path string `json:"path,omitempty"`
	}
	type address struct {
		Type string `json:"type"`
		Data data   `json:"data"`
	}
	a := address{"inet", data{Host: addr.Host, Port: strconv.Itoa(addr.Port)}}
	if addr.Socket != "" {
		a = address{"unix", data{Path: addr.Socket}}
	}
	return m.Run(ctx, "nbd-server-start", struct {
		Addr     address `json:"addr"`
		TLSCreds string  `json:"tls-creds,omitempty"`
	}{a, tlsCreds}, nil)
}

// NBDServerStop stops the NBD server and drops its exports
// ("nbd-server-stop").
func (m *Monitor) NBDServerStop(ctx context.Context) error {
	return m.Run(ctx, "nbd-server-stop", nil, nil)
}

// BlockExportAddNBD exports node over the NBD server under name, writable
// or not ("block-export-add" of type nbd). id names the export.
func (m *Monitor) BlockExportAddNBD(ctx context.Context, id, node, name string, writable bool) error {
	return m.Run(ctx, "block-export-add", struct {
		Type     string `json:"type"`
		ID       string `json:"id"`
		NodeName string `json:"node-name"`
		Name     string `json:"name"`
		Writable bool   `json:"writable"`
	}{"nbd", id, node, name, writable}, nil)
}

// BlockdevAddNBD adds a block node named node that is the NBD export
// export of the server at addr ("blockdev-add" with driver nbd), in TLS
// with the credentials object tlsCreds (the server's certificate naming
// tlsHostname) unless tlsCreds is "".
func (m *Monitor) BlockdevAddNBD(ctx context.Context, node string, addr NBDAddress, export, tlsCreds, tlsHostname string) error {
	type server struct {
		Type string `json:"type"`
		Host string `json:"host,omitempty"`
		Port string `json:"port,omitempty"`
		Path string `json:"path,omitempty"`
	}
	srv := server{Type: "inet", Host: addr.Host, Port: strconv.Itoa(addr.Port)}
	if addr.Socket != "" {
		srv = server{Type: "unix", Path: addr.Socket}
	}
	return m.Run(ctx, "blockdev-add", struct {
		Driver      string `json:"driver"`
		Server      server `json:"server"`
		Export      string `json:"export"`
		NodeName    string `json:"node-name"`
		ReadOnly    bool   `json:"read-only"`
		TLSCreds    string `json:"tls-creds,omitempty"`
		TLSHostname string `json:"tls-hostname,omitempty"`
	}{"nbd", srv, export, node, false, tlsCreds, tlsHostname}, nil)
}

// BlockdevDel removes a block node added with blockdev-add
// ("blockdev-del").
func (m *Monitor) BlockdevDel(ctx context.Context, node string) error {
	return m.Run(ctx, "blockdev-del", struct {
		NodeName string `json:"node-name"`
	}{node}, nil)
}

// Mirror is a blockdev-mirror job's set-up.
type Mirror struct {
	JobID  string `json:"job-id"`
	Device string `json:"device"`
	Target string `json:"target"`
	// Sync is "full" (the whole chain) or "top" (only the top image).
	Sync string `json:"sync"`
	// Speed limits the copy, in bytes per second; 0 is unlimited.
	Speed int64 `json:"speed,omitempty"`
	// CopyMode "write-blocking" makes guest writes wait for the mirror;
	// empty is QEMU's default "background".
	CopyMode string `json:"copy-mode,omitempty"`
	// AutoDismiss false keeps a concluded job (and its error) until
	// JobDismiss, so the end of the job is never missed.
	AutoDismiss bool `json:"auto-dismiss"`
}

// BlockdevMirror starts mirroring a node into another
// ("blockdev-mirror").
func (m *Monitor) BlockdevMirror(ctx context.Context, mirror Mirror) error {
	return m.Run(ctx, "blockdev-mirror", mirror, nil)
}

// BlockJob is an entry of query-block-jobs.
type BlockJob struct {
	Device string `json:"device"` // the job id
	Type   string `json:"type"`
	// Len and Offset measure progress: Offset of Len bytes are done (Len
	// grows while the guest writes).
	Len    int64 `json:"len"`
	Offset int64 `json:"offset"`
	Busy   bool  `json:"busy"`
	Paused bool  `json:"paused"`
	Speed  int64 `json:"speed"`
	// Ready: a mirror has caught up and stays in sync.
	Ready bool `json:"ready"`
	// Status is the job's state: "running", "ready", "concluded", ...
	Status string `json:"status"`
	// Error is set when a concluded job failed.
	Error string `json:"error,omitempty"`
}

// QueryBlockJobs lists the block jobs ("query-block-jobs").
func (m *Monitor) QueryBlockJobs(ctx context.Context) ([]BlockJob, error) {
	var jobs []BlockJob
	err := m.Run(ctx, "query-block-jobs", nil, &jobs)
	return jobs, err
}

// BlockJobCancel ends a job ("block-job-cancel"). For a ready mirror
// without force it is the clean completion that leaves the target a
// consistent copy (and the source in use); force abandons the copy.
func (m *Monitor) BlockJobCancel(ctx context.Context, id string, force bool) error {
	return m.Run(ctx, "block-job-cancel", struct {
		Device string `json:"device"`
		Force  bool   `json:"force,omitempty"`
	}{id, force}, nil)
}

// JobDismiss removes a concluded job ("job-dismiss").
func (m *Monitor) JobDismiss(ctx context.Context, id string) error {
	return m.Run(ctx, "job-dismiss", struct {
		ID string `json:"id"`
	}{id}, nil)
}

// BlockNode is an entry of query-named-block-nodes.
type BlockNode struct {
	NodeName string `json:"node-name"`
	Drv      string `json:"drv"`
	File     string `json:"file"`
	RO       bool   `json:"ro"`
	Image    struct {
		Filename    string `json:"filename"`
		Format      string `json:"format"`
		VirtualSize int64  `json:"virtual-size"`
	} `json:"image"`
}

// QueryNamedBlockNodes lists the block nodes, without their backing
// chains ("query-named-block-nodes" with flat).
func (m *Monitor) QueryNamedBlockNodes(ctx context.Context) ([]BlockNode, error) {
	var nodes []BlockNode
	err := m.Run(ctx, "query-named-block-nodes", struct {
		Flat bool `json:"flat"`
	}{true}, &nodes)
	return nodes, err
}
