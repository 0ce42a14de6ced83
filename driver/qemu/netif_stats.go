package qemu

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
)

// sysClassNet is where the kernel shows network devices' counters.
var sysClassNet = "/sys/class/net"

// tapStats is virNetDevTapInterfaceStats for a NIC with a host tap: the
// tap's counters from sysfs. For network and bridge NICs they are swapped,
// since what the tap transmits the guest receives; an ethernet NIC
// reports the host's view, as libvirt (virDomainNetTypeSharesHostView).
func tapStats(n *libvirtxml.DomainInterface) (libvirt.DomainInterfaceStatsRet, error) {
	dev := n.Target.Dev
	read := func(name string) (int64, error) {
		b, err := os.ReadFile(filepath.Join(sysClassNet, dev, "statistics", name))
		if err != nil {
			return 0, err
		}
		return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	}
	var v [8]int64
	names := []string{"rx_bytes", "rx_packets", "rx_errors", "rx_dropped", "tx_bytes", "tx_packets", "tx_errors", "tx_dropped"}
	for i, name := range names {
		x, err := read(name)
		if err != nil {
			return libvirt.DomainInterfaceStatsRet{}, compat.Errorf(libvirt.ErrSystemError, compat.FromNone, "cannot read statistics of interface %s: %v", dev, err)
		}
		v[i] = x
	}
	r := libvirt.DomainInterfaceStatsRet{RxBytes: v[0], RxPackets: v[1], RxErrs: v[2], RxDrop: v[3], TxBytes: v[4], TxPackets: v[5], TxErrs: v[6], TxDrop: v[7]}
	if n.Source != nil && n.Source.Ethernet == nil {
		r = libvirt.DomainInterfaceStatsRet{RxBytes: v[4], RxPackets: v[5], RxErrs: v[6], RxDrop: v[7], TxBytes: v[0], TxPackets: v[1], TxErrs: v[2], TxDrop: v[3]}
	}
	return r, nil
}

// tapStatsParams adds net.<i>.name and its counters for a NIC with a host
// tap (qemuDomainGetStatsInterface); a NIC without one, or whose counters
// cannot be read, adds nothing.
func tapStatsParams(i int, n *libvirtxml.DomainInterface, add func(string, *libvirt.TypedParamValue)) {
	if n.Target == nil || n.Target.Dev == "" {
		return
	}
	st, err := tapStats(n)
	if err != nil {
		return
	}
	p := func(k string) string { return fmt.Sprintf("net.%d.%s", i, k) }
	add(p("name"), libvirt.NewTypedParamValueString(n.Target.Dev))
	for _, c := range []struct {
		k string
		v int64
	}{{"rx.bytes", st.RxBytes}, {"rx.pkts", st.RxPackets}, {"rx.errs", st.RxErrs}, {"rx.drop", st.RxDrop},
		{"tx.bytes", st.TxBytes}, {"tx.pkts", st.TxPackets}, {"tx.errs", st.TxErrs}, {"tx.drop", st.TxDrop}} {
		add(p(c.k), libvirt.NewTypedParamValueUllong(uint64(c.v)))
	}
}
