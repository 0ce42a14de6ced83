package qemu

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
	"syscall"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
)

// Fault injection: a documented way for people testing their libvirt
// clients to make a migration step fail on purpose, deterministically.
//
// The config key fault_injection lists "<step>:<action>" strings. Steps are
// begin, prepare, perform, finish and confirm, each firing on entry on the
// host that runs it (on the destination, perform fires when its QEMU starts
// receiving the stream), plus <step>-end, after the step's work and just
// before its reply, and perform-nbd-copy (see faultInnerPoints). Actions:
//
//	error        the step returns an error (on entry: having done nothing)
//	kill-qemu    the domain's QEMU on this host is killed at that point
//	exit-daemon  the daemon exits at that point, as a crash would
type faultAction string

const (
	faultError      faultAction = "error"
	faultKillQEMU   faultAction = "kill-qemu"
	faultExitDaemon faultAction = "exit-daemon"
)

var faultSteps = map[string]bool{"begin": true, "prepare": true, "perform": true, "finish": true, "confirm": true}

// faultInnerPoints are points inside a step: perform-nbd-copy fires on the
// source once every disk mirror is in sync, before the memory moves.
var faultInnerPoints = map[string]bool{"perform-nbd-copy": true}

// faults maps a point ("prepare", "finish-end", ...) to its action.
type faults map[string]faultAction

// parseFaults checks the configured list.
func parseFaults(specs []string) (faults, error) {
	f := faults{}
	for _, s := range specs {
		point, action, ok := strings.Cut(s, ":")
		step := strings.TrimSuffix(point, "-end")
		if !ok || !(faultSteps[step] || faultInnerPoints[point]) {
			return nil, fmt.Errorf("fault_injection %q: want <step>:<action> with step begin, prepare, perform, finish or confirm (optionally with -end)", s)
		}
		switch a := faultAction(action); a {
		case faultError, faultKillQEMU, faultExitDaemon:
			f[point] = a
		default:
			return nil, fmt.Errorf("fault_injection %q: action must be error, kill-qemu or exit-daemon", s)
		}
	}
	return f, nil
}

// fire triggers the fault configured at point, if any, for dom. It returns
// the error the step must return (for "error"), or nil to carry on.
func (d *Driver) fire(point string, dom *domain) error {
	action, ok := d.faults[point]
	if !ok {
		return nil
	}
	name := ""
	if dom != nil {
		name = dom.name
	}
	d.log.Warn("fault injected", "point", point, "action", string(action), "domain", name)
	switch action {
	case faultError:
		return compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "fault injected at %s", point)
	case faultKillQEMU:
		if dom != nil {
			dom.mu.Lock()
			proc := dom.proc
			dom.mu.Unlock()
			if proc != nil {
				syscall.Kill(proc.PID(), syscall.SIGKILL)
			}
		}
	case faultExitDaemon:
		// As a crash: no clean-up, no deferred functions.
		slog.Default().Error("fault injection: daemon exits", "point", point)
		os.Exit(3)
	}
	return nil
}
