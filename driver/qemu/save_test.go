package qemu

import (
	"testing"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
)

func TestSaveFlags(t *testing.T) {
	if err := checkSaveFlags(saveRunning|saveBypassCache, saveBypassCache|saveRunning|savePaused); err != nil {
		t.Errorf("--running --bypass-cache: %v", err)
	}
	err := checkSaveFlags(saveRunning|savePaused, saveBypassCache|saveRunning|savePaused)
	if le := compat.As(err); le.Code != libvirt.ErrInvalidArg || le.Message() != "invalid argument: Flags 'VIR_DOMAIN_SAVE_RUNNING' and 'VIR_DOMAIN_SAVE_PAUSED' are mutually exclusive" {
		t.Errorf("--running --paused: %v", err)
	}
	if err := checkSaveFlags(saveResetNvram, saveBypassCache|saveRunning|savePaused); !compat.Is(err, libvirt.ErrInvalidArg) {
		t.Errorf("restore-only flag on save: %v", err)
	}
	for _, c := range []struct {
		was   bool
		flags uint32
		want  bool
	}{
		{true, 0, true}, {false, 0, false},
		{false, saveRunning, true}, {true, savePaused, false},
		{true, saveBypassCache, true},
	} {
		if got := runningAfter(c.was, c.flags); got != c.want {
			t.Errorf("runningAfter(%v, %#x) = %v", c.was, c.flags, got)
		}
	}
}
