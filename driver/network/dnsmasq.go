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
	Conf, Hosts, AddnHosts, Leases, PID string
}

func (d *Driver) dnsmasqPaths(name string) dnsmasqPaths {
	dir := filepath.Join(d.opts.StateDir, "dnsmasq")
	return dnsmasqPaths{
		Conf:      filepath.Join(dir, name+".conf"),
		Hosts:     filepath.Join(dir, name+".hostsfile"),
		AddnHosts: filepath.Join(dir, name+".addnhosts"),
		Leases:    filepath.Join(dir, name+".leases"),
		PID:       filepath.Join(d.runDir(), name+".pid"),
	}
}

// needsDnsmasq: libvirt runs dnsmasq for every network it routes itself
// (isolated and nat), for DNS even without DHCP; a host bridge has none.
func needsDnsmasq(def *libvirtxml.Network) bool {
	return forwardMode(def) != modeBridge && len(def.IPs) > 0
}

// dnsmasqConf is networkDnsmasqConfContents for what govirtd supports:
// the same lines in the same order, except that dnsmasq keeps its own
// leases file (dhcp-leasefile) where libvirt runs a lease helper script.
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
	if hosts {
		fmt.Fprintf(&b, "dhcp-hostsfile=%s\n", p.Hosts)
		fmt.Fprintf(&b, "dhcp-leasefile=%s\n", p.Leases)
	}
	fmt.Fprintf(&b, "addn-hosts=%s\n", p.AddnHosts)
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

// dnsmasqHosts is the dhcp-hostsfile: "MAC,IP,NAME" per <host>, as
// libvirt writes it.
func dnsmasqHosts(def *libvirtxml.Network) string {
	var b strings.Builder
	for i := range def.IPs {
		if def.IPs[i].DHCP == nil {
			continue
		}
		for _, h := range def.IPs[i].DHCP.Hosts {
			var parts []string
			for _, s := range []string{h.MAC, h.IP, h.Name} {
				if s != "" {
					parts = append(parts, s)
				}
			}
			b.WriteString(strings.Join(parts, ",") + "\n")
		}
	}
	return b.String()
}

// dnsmasqAddnHosts is the addn-hosts file: the <dns><host> entries, "IP
// NAME..." per line.
func dnsmasqAddnHosts(def *libvirtxml.Network) string {
	if def.DNS == nil {
		return ""
	}
	var b strings.Builder
	for _, h := range def.DNS.Host {
		b.WriteString(h.IP)
		for _, n := range h.Hostnames {
			b.WriteString("\t" + n.Hostname)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// startDnsmasq writes the network's dnsmasq files and starts it; dnsmasq
// daemonizes and writes its pid file, which stopDnsmasq reads.
func (d *Driver) startDnsmasq(ctx context.Context, def *libvirtxml.Network) error {
	p := d.dnsmasqPaths(def.Name)
	if err := os.MkdirAll(filepath.Dir(p.Conf), 0o755); err != nil {
		return fmt.Errorf("create dnsmasq directory: %w", err)
	}
	files := map[string]string{p.Conf: dnsmasqConf(def, p), p.Hosts: dnsmasqHosts(def), p.AddnHosts: dnsmasqAddnHosts(def)}
	for path, content := range files {
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
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
	for i := 0; i < 50; i++ {
		if _, alive := d.dnsmasqPID(p); !alive {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, alive := d.dnsmasqPID(p); alive {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	os.Remove(p.PID)
	return nil
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
