package network

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"libvirt.org/go/libvirtxml"
)

// dnsmasqPaths are one network's dnsmasq files, laid out as libvirt's
// /var/lib/libvirt/dnsmasq/NAME.* and /run/libvirt/network/NAME.pid.
type dnsmasqPaths struct {
	Conf, Leases, PID string
}

func (d *Driver) dnsmasqPaths(name string) dnsmasqPaths {
	dir := filepath.Join(d.opts.StateDir, "dnsmasq")
	return dnsmasqPaths{
		Conf:   filepath.Join(dir, name+".conf"),
		Leases: filepath.Join(dir, name+".leases"),
		PID:    filepath.Join(d.runDir(), name+".pid"),
	}
}

// needsDnsmasq: libvirt runs dnsmasq for every network it routes itself
// (isolated and nat), for DNS even without DHCP; a host bridge has none.
func needsDnsmasq(def *libvirtxml.Network) bool {
	return forwardMode(def) != modeBridge && len(def.IPs) > 0
}

// dnsmasqConf is networkDnsmasqConfContents for what govirtd supports:
// the same lines in the same order, but for two things. dnsmasq keeps its
// own leases file (dhcp-leasefile) where libvirt runs a lease helper
// script. And the static DHCP hosts and DNS hosts are lines of this file
// (dhcp-host, host-record) where libvirt points to files of their own
// (dhcp-hostsfile, addn-hosts): dnsmasq reads those after it has dropped
// root, and govirtd's state_dir (0700) would keep it out; this file it
// reads as root, at start-up.
func dnsmasqConf(def *libvirtxml.Network, p dnsmasqPaths) string {
	var b strings.Builder
	fmt.Fprintf(&b, `##WARNING:  THIS IS AN AUTO-GENERATED FILE. CHANGES TO IT ARE LIKELY TO BE
##OVERWRITTEN AND LOST.  Changes to this configuration should be made using:
##    virsh net-edit %s
## or other application using the libvirt API.
##
## dnsmasq conf file created by govirtd
strict-order
`, def.Name)
	if def.DNS != nil && def.DNS.Enable == "no" {
		// DHCP only: dnsmasq's DNS server off.
		b.WriteString("port=0\n")
	}
	fmt.Fprintf(&b, "pid-file=%s\n", p.PID)
	if def.Domain != nil && def.Domain.Name != "" {
		fmt.Fprintf(&b, "domain=%s\n", def.Domain.Name)
		if def.Domain.LocalOnly == "yes" {
			fmt.Fprintf(&b, "local=/%s/\n", def.Domain.Name)
		}
	}
	b.WriteString("except-interface=lo\nbind-dynamic\n")
	fmt.Fprintf(&b, "interface=%s\n", def.Bridge.Name)
	var hosts bool
	for i := range def.IPs {
		ip := &def.IPs[i]
		if ip.DHCP == nil {
			continue
		}
		n, _ := ipNet(ip)
		mask := net.IP(n.Mask).String()
		total := 0
		for _, r := range ip.DHCP.Ranges {
			fmt.Fprintf(&b, "dhcp-range=%s,%s,%s", r.Start, r.End, mask)
			if r.Lease != nil {
				fmt.Fprintf(&b, ",%s", leaseTime(r.Lease))
			}
			b.WriteString("\n")
			total += int(ipToUint(net.ParseIP(r.End))-ipToUint(net.ParseIP(r.Start))) + 1
		}
		if len(ip.DHCP.Ranges) == 0 && len(ip.DHCP.Hosts) > 0 {
			// Static hosts only: dnsmasq needs a static "range".
			fmt.Fprintf(&b, "dhcp-range=%s,static\n", n.IP.Mask(n.Mask))
		}
		if len(ip.DHCP.Ranges) == 0 {
			total = len(ip.DHCP.Hosts)
		}
		b.WriteString("dhcp-no-override\ndhcp-authoritative\n")
		fmt.Fprintf(&b, "dhcp-lease-max=%d\n", total)
		hosts = true
	}
	for i := range def.IPs {
		if def.IPs[i].DHCP == nil {
			continue
		}
		for _, h := range def.IPs[i].DHCP.Hosts {
			fmt.Fprintf(&b, "dhcp-host=%s\n", dhcpHostLine(h))
		}
	}
	if hosts {
		fmt.Fprintf(&b, "dhcp-leasefile=%s\n", p.Leases)
	}
	if def.DNS != nil {
		for _, h := range def.DNS.Host {
			var names []string
			for _, n := range h.Hostnames {
				names = append(names, n.Hostname)
			}
			fmt.Fprintf(&b, "host-record=%s,%s\n", strings.Join(names, ","), h.IP)
		}
	}
	return b.String()
}

// leaseTime is a <lease> as dnsmasq writes it ("infinite", "30m", "2h").
func leaseTime(l *libvirtxml.NetworkDHCPLease) string {
	if l.Expiry == 0 {
		return "infinite"
	}
	unit := map[string]string{"": "m", "minutes": "m", "hours": "h", "seconds": ""}[l.Unit]
	return strconv.FormatUint(uint64(l.Expiry), 10) + unit
}

// dhcpHostLine is a <host> as libvirt writes it in the hosts file:
// "MAC,IP,NAME", without the parts it lacks.
func dhcpHostLine(h libvirtxml.NetworkDHCPHost) string {
	var parts []string
	for _, s := range []string{h.MAC, h.IP, h.Name} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, ",")
}

// startDnsmasq writes the network's dnsmasq files and starts it; dnsmasq
// daemonizes and writes its pid file, which stopDnsmasq reads.
func (d *Driver) startDnsmasq(ctx context.Context, def *libvirtxml.Network) error {
	p := d.dnsmasqPaths(def.Name)
	if err := os.MkdirAll(filepath.Dir(p.Conf), 0o755); err != nil {
		return fmt.Errorf("create dnsmasq directory: %w", err)
	}
	if err := os.WriteFile(p.Conf, []byte(dnsmasqConf(def, p)), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", p.Conf, err)
	}
	os.Remove(p.PID)
	if err := d.run.Run(ctx, d.opts.Dnsmasq, "--conf-file="+p.Conf); err != nil {
		return fmt.Errorf("start dnsmasq for network %s: %w", def.Name, err)
	}
	return nil
}

// stopDnsmasq kills the network's dnsmasq, if the pid file names one that
// still runs with this network's configuration (a stale pid may belong
// to another process by now).
func (d *Driver) stopDnsmasq(def *libvirtxml.Network) error {
	p := d.dnsmasqPaths(def.Name)
	pid, ok := d.dnsmasqPID(p)
	if !ok {
		os.Remove(p.PID)
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill dnsmasq %d of network %s: %w", pid, def.Name, err)
	}
	if !waitGone(pid, 2*time.Second) {
		syscall.Kill(pid, syscall.SIGKILL)
		if !waitGone(pid, 2*time.Second) {
			return fmt.Errorf("dnsmasq %d of network %s does not exit", pid, def.Name)
		}
	}
	os.Remove(p.PID)
	return nil
}

// waitGone waits until the process has exited and closed its sockets, so
// that a new dnsmasq can bind the same addresses. Its command line is no
// sign: the kernel drops it before it closes the process's files; a
// zombie has closed them.
func waitGone(pid int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return true
		}
		// "PID (COMM) STATE ...": COMM may hold spaces and parentheses.
		if i := strings.LastIndexByte(string(stat), ')'); i > 0 && i+2 < len(stat) && (stat[i+2] == 'Z' || stat[i+2] == 'X') {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// dnsmasqPID returns the pid of the network's running dnsmasq.
func (d *Driver) dnsmasqPID(p dnsmasqPaths) (int, bool) {
	b, err := os.ReadFile(p.PID)
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0, false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmdline), "--conf-file="+p.Conf) {
		return 0, false
	}
	return pid, true
}
