package qemu

import (
	"context"
	"errors"
	"fmt"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver/qemu/qmp"
)

// monitorCommandHMP is VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP (libvirt-qemu.h).
const monitorCommandHMP = 1

// QEMUMonitorCommand implements driver.DomainStats as libvirt's
// qemuDomainQemuMonitorCommand: the command goes to QEMU as it is (an HMP
// line through human-monitor-command) and QEMU's whole reply comes back,
// error replies included. The domain is tainted "custom-monitor", which
// is logged as a warning once per run, as libvirt does.
func (d *Driver) QEMUMonitorCommand(ctx context.Context, ref libvirt.Domain, cmd string, flags uint32) (string, error) {
	if flags&^monitorCommandHMP != 0 {
		return "", errUnsupportedFlags(flags)
	}
	dom, err := d.get(ref)
	if err != nil {
		return "", err
	}
	mon, err := dom.monitor()
	if err != nil {
		return "", err
	}
	d.taint(dom, taintCustomMonitor)
	if flags&monitorCommandHMP != 0 {
		out, err := mon.HumanMonitorCommand(ctx, cmd)
		var ce *qmp.CommandError
		if errors.As(err, &ce) {
			return "", compat.Errorf(libvirt.ErrInternalError, compat.FromQEMU, "unable to execute QEMU command 'human-monitor-command': %s", ce.Desc)
		}
		return out, err
	}
	reply, err := mon.RunRaw(ctx, []byte(cmd))
	if errors.Is(err, qmp.ErrNotACommand) {
		return "", compat.Errorf(libvirt.ErrInternalError, compat.FromNone, "cannot parse json %s: %v", cmd, errors.Unwrap(err))
	}
	if err != nil {
		return "", err
	}
	return string(reply), nil
}

// Taint reasons (virDomainTaintFlags) govirtd records.
type taintFlag uint32

const taintCustomMonitor taintFlag = 1 << 3 // VIR_DOMAIN_TAINT_CUSTOM_MONITOR

var taintNames = map[taintFlag]string{taintCustomMonitor: "custom-monitor"}

// taint marks a running domain, logging the first time, as
// qemuDomainObjTaint.
func (d *Driver) taint(dom *domain, f taintFlag) {
	dom.mu.Lock()
	first := dom.taint&f == 0
	dom.taint |= f
	id, name, uuid := dom.id, dom.name, dom.uuid
	dom.mu.Unlock()
	if first {
		d.log.Warn(fmt.Sprintf("Domain id=%d name='%s' uuid=%s is tainted: %s", id, name, formatUUID(uuid), taintNames[f]))
	}
}
