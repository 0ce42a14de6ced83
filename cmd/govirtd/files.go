package main

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/govirtd/govirtd/driver/qemu/store"
	"github.com/govirtd/govirtd/server/config"
)

// writePIDFile creates path holding our pid, refusing if it names a live
// process (another daemon with the same configuration). The returned func
// removes it.
func writePIDFile(path string) (func(), error) {
	if data, err := os.ReadFile(path); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil && pid > 0 && pid != os.Getpid() {
			if syscall.Kill(pid, 0) == nil {
				return nil, fmt.Errorf("pid file %s: daemon already running with pid %d", path, pid)
			}
		}
	}
	if err := store.WriteFileAtomic(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return nil, fmt.Errorf("pid file: %w", err)
	}
	return func() { os.Remove(path) }, nil
}

// hostUUID returns host_uuid from the configuration or, when unset, a UUID
// generated once and kept in state_dir. libvirt falls back to a random UUID
// per daemon start when SMBIOS has none, which the captures show breaking
// the same-host check across restarts; a stored one stays stable, and two
// daemons with their own state_dir on one machine still differ.
func hostUUID(cfg *config.Config) (string, error) {
	if cfg.HostUUID != "" {
		return cfg.HostUUID, nil
	}
	path := filepath.Join(cfg.StateDir, "host-uuid")
	data, err := os.ReadFile(path)
	if err == nil {
		s := strings.TrimSpace(string(data))
		if _, err := config.ParseHostUUID(s); err != nil {
			return "", fmt.Errorf("%s: %w", path, err)
		}
		return s, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	s := fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
	if err := store.WriteFileAtomic(path, []byte(s+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("store host UUID: %w", err)
	}
	return s, nil
}
