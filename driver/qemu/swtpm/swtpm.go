// Package swtpm runs the software TPM emulator behind a guest's
// <tpm><backend type='emulator'/>, as libvirt 9.0's qemu_tpm.c does: the
// TPM's state lives in a directory per domain UUID and version, is
// manufactured once with swtpm_setup (EK and platform certificates from
// swtpm's local CA), and each QEMU start runs one "swtpm socket" process
// whose control socket QEMU connects to; with --terminate it exits when
// QEMU lets go of it. A migration carries the TPM's state in QEMU's
// stream, so a destination starts swtpm on an empty state directory.
package swtpm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Instance is one guest TPM's files.
type Instance struct {
	// StateDir holds the TPM's state (tpm2-00.permall).
	StateDir string
	// Socket is the control socket QEMU connects to.
	Socket string
	// Log is swtpm's and swtpm_setup's log.
	Log string
	// Version is "2.0" or "1.2".
	Version string
	// VMID names the guest to swtpm_setup's certificates (NAME:UUID).
	VMID string
}

// StateRoot is where a domain's TPM states live under root: a directory
// per UUID, one per TPM version inside (libvirt:
// /var/lib/libvirt/swtpm/UUID/tpm2).
func StateRoot(root, uuid string) string { return filepath.Join(root, uuid) }

// NewInstance lays out a domain's TPM files: state under stateRoot, the
// socket and log in runDir.
func NewInstance(stateRoot, uuid, name, runDir, logDir, version string) Instance {
	sub := "tpm2"
	if version == "1.2" {
		sub = "tpm1.2"
	}
	return Instance{
		StateDir: filepath.Join(StateRoot(stateRoot, uuid), sub),
		Socket:   filepath.Join(runDir, "swtpm.sock"),
		Log:      filepath.Join(logDir, name+"-swtpm.log"),
		Version:  version,
		VMID:     name + ":" + uuid,
	}
}

func (i Instance) tpm2() []string {
	if i.Version == "1.2" {
		return nil
	}
	return []string{"--tpm2"}
}

// manufactured reports whether the state directory holds a TPM state.
func (i Instance) manufactured() bool {
	entries, err := os.ReadDir(i.StateDir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".permall") {
			return true
		}
	}
	return false
}

// Prepare makes the state directory and, for a guest that is not
// arriving by migration, manufactures the TPM the first time.
func (i Instance) Prepare(ctx context.Context, incoming bool) error {
	if err := os.MkdirAll(i.StateDir, 0o700); err != nil {
		return fmt.Errorf("swtpm state: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(i.Log), 0o700); err != nil {
		return fmt.Errorf("swtpm log: %w", err)
	}
	if incoming || i.manufactured() {
		return nil
	}
	args := append(i.tpm2(), "--tpm-state", i.StateDir, "--vmid", i.VMID, "--logfile", i.Log,
		"--createek", "--create-ek-cert", "--create-platform-cert", "--lock-nvram", "--not-overwrite")
	if out, err := exec.CommandContext(ctx, "swtpm_setup", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("swtpm_setup: %v: %s (see %s)", err, strings.TrimSpace(string(out)), i.Log)
	}
	return nil
}

// Start runs swtpm for one QEMU and waits for its control socket. The
// process is in a session of its own, so a daemon restart leaves it with
// its QEMU; it ends when QEMU disconnects (--terminate).
func (i Instance) Start(ctx context.Context) (*os.Process, error) {
	os.Remove(i.Socket)
	args := append([]string{"socket",
		"--ctrl", "type=unixio,path=" + i.Socket + ",mode=0600",
		"--tpmstate", "dir=" + i.StateDir + ",mode=0600",
		"--log", "file=" + i.Log,
		"--terminate"}, i.tpm2()...)
	cmd := exec.Command("swtpm", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start swtpm: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		if _, err := os.Stat(i.Socket); err == nil {
			return cmd.Process, nil
		}
		select {
		case err := <-exited:
			return nil, fmt.Errorf("swtpm exited at start (%v): see %s", err, i.Log)
		case <-ctx.Done():
			cmd.Process.Kill()
			return nil, ctx.Err()
		case <-deadline.C:
			cmd.Process.Kill()
			return nil, errors.New("swtpm did not create its socket within 10 s")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Remove deletes a domain's TPM states (undefine).
func Remove(stateRoot, uuid string) error {
	return os.RemoveAll(StateRoot(stateRoot, uuid))
}
