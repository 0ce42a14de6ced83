package server_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver"
)

// recStats answers the statistics calls with fixed values and records the
// arguments.
type recStats struct {
	driver.DomainStats
	driver.DomainSaves
	cmd      string
	cmdFlags uint32
	pinned   []int
	pinFlags uint32
}

func (r *recStats) BlockStats(ctx context.Context, dom libvirt.Domain, disk string) (driver.BlockStats, error) {
	if disk != "vda" {
		return driver.BlockStats{}, compat.Errorf(libvirt.ErrInvalidArg, compat.FromQEMU, "invalid path: %s", disk)
	}
	return driver.BlockStats{RdReq: 1, RdBytes: 512, RdTotalTimes: 7, WrReq: 2, WrBytes: 8, WrTotalTimes: 9, FlushReq: 3, FlushTotalTimes: 4}, nil
}

func (r *recStats) GetVcpus(ctx context.Context, dom libvirt.Domain, max int) ([]driver.Vcpu, error) {
	return []driver.Vcpu{
		{Info: libvirt.VcpuInfo{Number: 0, State: 1, CPUTime: 2e9, CPU: 1}, Affinity: []int{0, 1, 9}},
		{Info: libvirt.VcpuInfo{Number: 1, State: 1, CPU: 0}, Affinity: []int{0}},
	}[:max], nil
}

func (r *recStats) GetVcpuPinInfo(ctx context.Context, dom libvirt.Domain, max int, flags uint32) ([][]int, error) {
	return [][]int{{0, 1}, {1}}[:max], nil
}

func (r *recStats) PinVcpu(ctx context.Context, dom libvirt.Domain, vcpu uint32, cpus []int, flags uint32) error {
	r.pinned, r.pinFlags = cpus, flags
	return nil
}

func (r *recStats) QEMUMonitorCommand(ctx context.Context, dom libvirt.Domain, cmd string, flags uint32) (string, error) {
	r.cmd, r.cmdFlags = cmd, flags
	return `{"return":{"status":"running","singlestep":false,"running":true},"id":3}`, nil
}

func TestBlockStatsFlagsParams(t *testing.T) {
	ts := start(t, nil)
	ts.drv.DomainStats = &recStats{}
	l := ts.client(t, "libvirt-sock")
	dom := libvirt.Domain{Name: "demo"}
	// virsh asks how many first.
	ps, n, err := l.DomainBlockStatsFlags(dom, "vda", 0, 0)
	if err != nil || n != 8 || len(ps) != 0 {
		t.Fatalf("count: %v %d %v", ps, n, err)
	}
	ps, _, err = l.DomainBlockStatsFlags(dom, "vda", 8, uint32(libvirt.TypedParamStringOkay))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range ps {
		got = append(got, p.Field)
		if p.Field == "rd_operations" && p.Value.I != int64(1) {
			t.Errorf("rd_operations = %v", p.Value.I)
		}
	}
	want := []string{"wr_bytes", "wr_operations", "rd_bytes", "rd_operations", "flush_operations", "wr_total_times", "rd_total_times", "flush_total_times"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("fields %v\nwant   %v", got, want)
	}
	if ps, _, _ := l.DomainBlockStatsFlags(dom, "vda", 2, 0); len(ps) != 2 {
		t.Errorf("nparams 2: got %d", len(ps))
	}
	rdReq, rdBytes, wrReq, wrBytes, errs, err := l.DomainBlockStats(dom, "vda")
	if err != nil || rdReq != 1 || rdBytes != 512 || wrReq != 2 || wrBytes != 8 || errs != -1 {
		t.Errorf("block stats %d %d %d %d %d %v", rdReq, rdBytes, wrReq, wrBytes, errs, err)
	}
	_, _, err = l.DomainBlockStatsFlags(dom, "vdz", 8, 0)
	var le libvirt.Error
	if !errors.As(err, &le) || le.Code != uint32(libvirt.ErrInvalidArg) || !strings.Contains(le.Message, "invalid path: vdz") {
		t.Errorf("unknown disk: %v", err)
	}
}

func TestVcpuCPUMaps(t *testing.T) {
	ts := start(t, nil)
	rec := &recStats{}
	ts.drv.DomainStats = rec
	l := ts.client(t, "libvirt-sock")
	dom := libvirt.Domain{Name: "demo"}
	info, maps, err := l.DomainGetVcpus(dom, 2, 1)
	if err != nil || len(info) != 2 || info[0].CPUTime != 2e9 || info[0].CPU != 1 {
		t.Fatalf("vcpus %+v %v", info, err)
	}
	// One byte per vCPU: CPU 9 does not fit.
	if !reflect.DeepEqual(maps, []byte{0b11, 0b01}) {
		t.Errorf("cpumaps %08b", maps)
	}
	maps, num, err := l.DomainGetVcpuPinInfo(dom, 2, 2, 0)
	if err != nil || num != 2 || !reflect.DeepEqual(maps, []byte{0b11, 0, 0b10, 0}) {
		t.Errorf("pin info %08b %d %v", maps, num, err)
	}
	if err := l.DomainPinVcpuFlags(dom, 1, []byte{0b101, 0b1}, 2); err != nil || !reflect.DeepEqual(rec.pinned, []int{0, 2, 8}) || rec.pinFlags != 2 {
		t.Errorf("pin %v flags %d: %v", rec.pinned, rec.pinFlags, err)
	}
}

// TestQEMUProgram: QEMU_PROC_DOMAIN_MONITOR_COMMAND is the QEMU program's
// procedure 1, not the remote program's (CONNECT_OPEN), and is refused on
// a read-only connection.
func TestQEMUProgram(t *testing.T) {
	ts := start(t, nil)
	rec := &recStats{}
	ts.drv.DomainStats = rec
	l := ts.client(t, "libvirt-sock")
	out, err := l.QEMUDomainMonitorCommand(libvirt.Domain{Name: "demo"}, `{"execute":"query-status"}`, 0)
	if err != nil || !strings.Contains(out, `"status":"running"`) || rec.cmd != `{"execute":"query-status"}` {
		t.Fatalf("monitor command: %q %v (driver got %q)", out, err, rec.cmd)
	}
	if _, err := l.QEMUDomainMonitorCommand(libvirt.Domain{Name: "demo"}, "info status", 1); err != nil || rec.cmdFlags != 1 {
		t.Errorf("hmp: %v, flags %d", err, rec.cmdFlags)
	}
	ro := ts.client(t, "libvirt-sock-ro")
	_, err = ro.QEMUDomainMonitorCommand(libvirt.Domain{Name: "demo"}, `{"execute":"quit"}`, 0)
	var le libvirt.Error
	if !errors.As(err, &le) || le.Code != uint32(libvirt.ErrOperationDenied) || !strings.Contains(le.Message, "read only access prevents virDomainQemuMonitorCommand") {
		t.Errorf("read-only: %v", err)
	}
	if rec.cmd == `{"execute":"quit"}` {
		t.Error("read-only command reached the driver")
	}
}
