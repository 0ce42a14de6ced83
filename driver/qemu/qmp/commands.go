package qmp

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Cont resumes vCPU execution ("cont"); QEMU emits RESUME.
func (m *Monitor) Cont(ctx context.Context) error { return m.Run(ctx, "cont", nil, nil) }

// Stop pauses vCPU execution ("stop"); QEMU emits STOP.
func (m *Monitor) Stop(ctx context.Context) error { return m.Run(ctx, "stop", nil, nil) }

// SystemPowerdown asks the guest to power down via ACPI
// ("system_powerdown"); QEMU emits POWERDOWN and, if the guest complies,
// later SHUTDOWN with guest=true.
func (m *Monitor) SystemPowerdown(ctx context.Context) error {
	return m.Run(ctx, "system_powerdown", nil, nil)
}

// SystemReset resets the machine ("system_reset"); QEMU emits RESET.
func (m *Monitor) SystemReset(ctx context.Context) error { return m.Run(ctx, "system_reset", nil, nil) }

// Quit makes QEMU exit ("quit"); it emits SHUTDOWN (guest=false,
// reason=host-qmp-quit) and closes the socket. QEMU may be gone before its
// reply reaches us, so losing the connection counts as success here.
func (m *Monitor) Quit(ctx context.Context) error {
	err := m.Run(ctx, "quit", nil, nil)
	if errors.Is(err, ErrDisconnected) {
		return nil
	}
	return err
}

// Run states reported by query-status (QEMU's RunState) that the driver
// distinguishes.
const (
	StatusRunning       = "running"
	StatusPaused        = "paused"
	StatusPrelaunch     = "prelaunch" // started with -S, never run
	StatusInMigrate     = "inmigrate" // waiting for an incoming migration
	StatusPostMigrate   = "postmigrate"
	StatusFinishMigrate = "finish-migrate"
	StatusShutdown      = "shutdown" // guest shut down, QEMU kept alive (-no-shutdown)
	StatusIOError       = "io-error"
	StatusInternalError = "internal-error"
	StatusGuestPanicked = "guest-panicked"
	StatusSuspended     = "suspended"
	StatusWatchdog      = "watchdog"
	StatusDebug         = "debug"
	StatusRestoreVM     = "restore-vm"
	StatusSaveVM        = "save-vm"
	StatusColo          = "colo"
)

// Status is query-status's StatusInfo.
type Status struct {
	Status  string `json:"status"`
	Running bool   `json:"running"`
	// Singlestep is deprecated in later QEMUs but always present in 7.2.
	Singlestep bool `json:"singlestep"`
}

// QueryStatus returns the VM run state ("query-status").
func (m *Monitor) QueryStatus(ctx context.Context) (Status, error) {
	var st Status
	err := m.Run(ctx, "query-status", nil, &st)
	return st, err
}

// CPUInfo is one entry of query-cpus-fast (CpuInfoFast).
type CPUInfo struct {
	CPUIndex int    `json:"cpu-index"`
	QOMPath  string `json:"qom-path"`
	// ThreadID is the host thread running the vCPU, for pinning and
	// statistics.
	ThreadID int `json:"thread-id"`
	// Target is the emulated architecture, e.g. "x86_64".
	Target string       `json:"target"`
	Props  *CPUTopology `json:"props,omitempty"`
}

// CPUTopology is CpuInstanceProperties: where the vCPU sits; members the
// machine type does not use are nil.
type CPUTopology struct {
	NodeID    *int `json:"node-id,omitempty"`
	SocketID  *int `json:"socket-id,omitempty"`
	DieID     *int `json:"die-id,omitempty"`
	ClusterID *int `json:"cluster-id,omitempty"`
	CoreID    *int `json:"core-id,omitempty"`
	ThreadID  *int `json:"thread-id,omitempty"`
}

// QueryCPUsFast lists the vCPUs without interrupting them
// ("query-cpus-fast").
func (m *Monitor) QueryCPUsFast(ctx context.Context) ([]CPUInfo, error) {
	var cpus []CPUInfo
	err := m.Run(ctx, "query-cpus-fast", nil, &cpus)
	return cpus, err
}

// Balloon sets the balloon target to bytes of guest memory ("balloon").
func (m *Monitor) Balloon(ctx context.Context, bytes int64) error {
	return m.Run(ctx, "balloon", struct {
		Value int64 `json:"value"`
	}{bytes}, nil)
}

// QueryBalloon returns the guest's current memory size in bytes as seen by
// the balloon ("query-balloon"). Without a balloon device QEMU answers with
// a CommandError of class DeviceNotActive.
func (m *Monitor) QueryBalloon(ctx context.Context) (int64, error) {
	var info struct {
		Actual int64 `json:"actual"`
	}
	err := m.Run(ctx, "query-balloon", nil, &info)
	return info.Actual, err
}

// Chardev is one entry of query-chardev (ChardevInfo).
type Chardev struct {
	Label string `json:"label"`
	// Filename describes the backend, e.g. "pty:/dev/pts/3",
	// "unix:/run/x.sock,server=on", "file:/var/log/x.log".
	Filename     string `json:"filename"`
	FrontendOpen bool   `json:"frontend-open"`
}

// PTY returns the pseudo-terminal path of a pty chardev.
func (c Chardev) PTY() (string, bool) {
	return strings.CutPrefix(c.Filename, "pty:")
}

// QueryChardev lists the character devices ("query-chardev").
func (m *Monitor) QueryChardev(ctx context.Context) ([]Chardev, error) {
	var devs []Chardev
	err := m.Run(ctx, "query-chardev", nil, &devs)
	return devs, err
}

// BlockInfo is the part of query-block's BlockInfo the driver uses.
type BlockInfo struct {
	// Device is the legacy drive name ("" for -blockdev only setups).
	Device string `json:"device"`
	// QDev is the attached device's id or QOM path.
	QDev      string `json:"qdev,omitempty"`
	Type      string `json:"type"`
	Removable bool   `json:"removable"`
	Locked    bool   `json:"locked"`
	TrayOpen  *bool  `json:"tray_open,omitempty"`
	// IOStatus is "ok", "failed" or "nospace" when rerror/werror
	// reporting is enabled.
	IOStatus string `json:"io-status,omitempty"`
	// Inserted is nil for an empty removable drive.
	Inserted *BlockDeviceInfo `json:"inserted,omitempty"`
}

// BlockDeviceInfo is the part of the medium description (BlockDeviceInfo)
// the driver uses.
type BlockDeviceInfo struct {
	File             string `json:"file"`
	NodeName         string `json:"node-name,omitempty"`
	RO               bool   `json:"ro"`
	Drv              string `json:"drv"`
	BackingFile      string `json:"backing_file,omitempty"`
	BackingFileDepth int    `json:"backing_file_depth"`
	Encrypted        bool   `json:"encrypted"`
	DetectZeroes     string `json:"detect_zeroes"`
	WriteThreshold   int64  `json:"write_threshold"`
	// Throttling limits in bytes/s and operations/s, 0 when unlimited.
	BPS    int64 `json:"bps"`
	BPSRd  int64 `json:"bps_rd"`
	BPSWr  int64 `json:"bps_wr"`
	IOPS   int64 `json:"iops"`
	IOPSRd int64 `json:"iops_rd"`
	IOPSWr int64 `json:"iops_wr"`
	Cache  *struct {
		Writeback bool `json:"writeback"`
		Direct    bool `json:"direct"`
		NoFlush   bool `json:"no-flush"`
	} `json:"cache,omitempty"`
	// Image describes the top image (the format node).
	Image *ImageInfo `json:"image,omitempty"`
}

// ImageInfo is the part of query-block's ImageInfo the driver uses.
type ImageInfo struct {
	Filename    string `json:"filename"`
	Format      string `json:"format"`
	VirtualSize int64  `json:"virtual-size"`
	// ActualSize is the bytes the image occupies on the host (absent when
	// QEMU cannot tell).
	ActualSize *int64 `json:"actual-size,omitempty"`
}

// QueryBlock lists the block backends ("query-block").
func (m *Monitor) QueryBlock(ctx context.Context) ([]BlockInfo, error) {
	var blocks []BlockInfo
	err := m.Run(ctx, "query-block", nil, &blocks)
	return blocks, err
}

type fdName struct {
	FDName string `json:"fdname"`
}

// GetFD hands f to QEMU under name ("getfd", the descriptor travelling as
// SCM_RIGHTS ancillary data), e.g. for an "fd:name" migration URI. QEMU
// gets its own copy; the caller keeps and eventually closes f.
func (m *Monitor) GetFD(ctx context.Context, name string, f *os.File) error {
	if f == nil {
		return fmt.Errorf("qmp getfd: nil file")
	}
	return m.run(ctx, "getfd", fdName{name}, nil, f)
}

// CloseFD makes QEMU close a descriptor received with GetFD ("closefd").
func (m *Monitor) CloseFD(ctx context.Context, name string) error {
	return m.Run(ctx, "closefd", fdName{name}, nil)
}

// ObjectAddTLSCredsX509 creates a tls-creds-x509 object reading the
// credentials in dir ("object-add"): endpoint "server" or "client";
// verifyPeer makes a server require a client certificate.
func (m *Monitor) ObjectAddTLSCredsX509(ctx context.Context, id, dir, endpoint string, verifyPeer bool) error {
	return m.Run(ctx, "object-add", struct {
		QOMType    string `json:"qom-type"`
		ID         string `json:"id"`
		Dir        string `json:"dir"`
		Endpoint   string `json:"endpoint"`
		VerifyPeer bool   `json:"verify-peer"`
	}{"tls-creds-x509", id, dir, endpoint, verifyPeer}, nil)
}

// ObjectDel removes an object ("object-del").
func (m *Monitor) ObjectDel(ctx context.Context, id string) error {
	return m.Run(ctx, "object-del", struct {
		ID string `json:"id"`
	}{id}, nil)
}

// Screendump writes the display's current picture to file, as a PPM
// image ("screendump"); device and head pick a display other than the
// primary one (device "" is the primary one).
func (m *Monitor) Screendump(ctx context.Context, file, device string, head int) error {
	args := map[string]any{"filename": file}
	if device != "" {
		args["device"] = device
		args["head"] = head
	}
	return m.Run(ctx, "screendump", args, nil)
}
