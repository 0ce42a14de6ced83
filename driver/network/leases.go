package network

import (
	"bufio"
	"context"
	"net"
	"os"
	"strconv"
	"strings"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"
)

// NetworkGetDHCPLeases implements driver.Networks from dnsmasq's leases
// file (networkGetDHCPLeases reads its helper's status file instead; the
// facts are the same): expired leases are left out.
func (d *Driver) NetworkGetDHCPLeases(ctx context.Context, n libvirt.Network, mac string) ([]libvirt.NetworkDhcpLease, error) {
	d.mu.Lock()
	o, err := d.get(n)
	var def *libvirtxml.Network
	if err == nil {
		def = o.live
		if def == nil {
			def = o.def
		}
	}
	d.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if forwardMode(def) == modeBridge {
		return nil, nil
	}
	f, err := os.Open(d.dnsmasqPaths(def.Name).Leases)
	if err != nil {
		return nil, nil // no lease yet
	}
	defer f.Close()
	return parseLeases(f, def, mac, nowUnix()), nil
}

// parseLeases reads dnsmasq's leases file: "EXPIRY MAC IP HOSTNAME
// CLIENTID" per line, "*" for an unknown hostname or client id.
func parseLeases(r interface{ Read([]byte) (int, error) }, def *libvirtxml.Network, mac string, now int64) []libvirt.NetworkDhcpLease {
	var out []libvirt.NetworkDhcpLease
	want, _ := net.ParseMAC(mac)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || f[0] == "duid" {
			continue
		}
		exp, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || (exp != 0 && exp < now) {
			continue
		}
		hw, err := net.ParseMAC(f[1])
		if err != nil || (want != nil && hw.String() != want.String()) {
			continue
		}
		ip := net.ParseIP(f[2]).To4()
		if ip == nil {
			continue
		}
		l := libvirt.NetworkDhcpLease{
			Iface:      def.Bridge.Name,
			Expirytime: exp,
			Type:       int32(libvirt.IPAddrTypeIpv4),
			Mac:        libvirt.OptString{hw.String()},
			Ipaddr:     ip.String(),
		}
		for i := range def.IPs {
			if n, err := ipNet(&def.IPs[i]); err == nil && n.Contains(ip) {
				l.Prefix = uint32(prefixLen(n))
			}
		}
		if f[3] != "*" {
			l.Hostname = libvirt.OptString{f[3]}
		}
		if len(f) > 4 && f[4] != "*" {
			l.Clientid = libvirt.OptString{f[4]}
		}
		out = append(out, l)
	}
	return out
}
