package network

import (
	"context"
	"fmt"
	"os"

	"libvirt.org/go/libvirtxml"
)

// govirtd's own chains, as libvirt 9.0 keeps its rules in LIBVIRT_INP,
// LIBVIRT_OUT, LIBVIRT_FWO, LIBVIRT_FWI, LIBVIRT_FWX and LIBVIRT_PRT: the
// built-in chains only jump to them, and a network's rules are added to
// and deleted from them exactly, so stopping a network removes its rules
// and nothing else.
var chains = []struct{ table, chain, parent string }{
	{"filter", "GOVIRTD_INP", "INPUT"},
	{"filter", "GOVIRTD_OUT", "OUTPUT"},
	// Each jump is inserted at the top of its parent, so FORWARD ends up
	// jumping to FWX, FWI, FWO in that order, as libvirt's.
	{"filter", "GOVIRTD_FWO", "FORWARD"},
	{"filter", "GOVIRTD_FWI", "FORWARD"},
	{"filter", "GOVIRTD_FWX", "FORWARD"},
	{"nat", "GOVIRTD_PRT", "POSTROUTING"},
}

// rule is one iptables rule: its table, chain and match/target arguments.
type rule struct {
	table, chain string
	args         []string
}

func (r rule) cmd(op string) []string {
	return append([]string{"-w", "-t", r.table, op, r.chain}, r.args...)
}

// firewallRules are the rules libvirt 9.0's iptables backend adds for an
// isolated or nat network (networkAddFirewallRules), in its order: DNS and
// DHCP to the host, forwarding of the subnet, and masquerading for nat.
func firewallRules(def *libvirtxml.Network) []rule {
	br := def.Bridge.Name
	var rs []rule
	add := func(table, chain string, args ...string) {
		rs = append(rs, rule{table, chain, args})
	}
	for _, proto := range []string{"udp", "tcp"} {
		add("filter", "GOVIRTD_INP", "-i", br, "-p", proto, "-m", proto, "--dport", "53", "-j", "ACCEPT")
	}
	for _, proto := range []string{"udp", "tcp"} {
		add("filter", "GOVIRTD_INP", "-i", br, "-p", proto, "-m", proto, "--dport", "67", "-j", "ACCEPT")
	}
	for _, proto := range []string{"udp", "tcp"} {
		add("filter", "GOVIRTD_OUT", "-o", br, "-p", proto, "-m", proto, "--dport", "53", "-j", "ACCEPT")
	}
	for _, proto := range []string{"udp", "tcp"} {
		add("filter", "GOVIRTD_OUT", "-o", br, "-p", proto, "-m", proto, "--dport", "68", "-j", "ACCEPT")
	}
	var nets []string
	if forwardMode(def) == modeNAT {
		for i := range def.IPs {
			if n, err := ipNet(&def.IPs[i]); err == nil {
				nets = append(nets, fmt.Sprintf("%s/%d", n.IP.Mask(n.Mask), prefixLen(n)))
			}
		}
	}
	// The subnet may go out and replies come back in...
	for _, sub := range nets {
		add("filter", "GOVIRTD_FWO", "-s", sub, "-i", br, "-j", "ACCEPT")
		add("filter", "GOVIRTD_FWI", "-d", sub, "-o", br, "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT")
	}
	// Everything not allowed above is refused; guests on the same
	// bridge may talk to each other.
	add("filter", "GOVIRTD_FWO", "-i", br, "-j", "REJECT", "--reject-with", "icmp-port-unreachable")
	add("filter", "GOVIRTD_FWI", "-o", br, "-j", "REJECT", "--reject-with", "icmp-port-unreachable")
	add("filter", "GOVIRTD_FWX", "-i", br, "-o", br, "-j", "ACCEPT")
	if len(nets) == 0 {
		return rs
	}
	ports := "1024-65535"
	if def.Forward.NAT != nil && len(def.Forward.NAT.Ports) > 0 {
		p := def.Forward.NAT.Ports[0]
		ports = fmt.Sprintf("%d-%d", p.Start, p.End)
	}
	for _, sub := range nets {
		add("nat", "GOVIRTD_PRT", "-s", sub, "-d", "224.0.0.0/24", "-j", "RETURN")
		add("nat", "GOVIRTD_PRT", "-s", sub, "-d", "255.255.255.255/32", "-j", "RETURN")
		add("nat", "GOVIRTD_PRT", "-s", sub, "!", "-d", sub, "-p", "tcp", "-j", "MASQUERADE", "--to-ports", ports)
		add("nat", "GOVIRTD_PRT", "-s", sub, "!", "-d", sub, "-p", "udp", "-j", "MASQUERADE", "--to-ports", ports)
		add("nat", "GOVIRTD_PRT", "-s", sub, "!", "-d", sub, "-j", "MASQUERADE")
	}
	return rs
}

// ensureChains creates govirtd's chains and the jumps to them once; an
// existing chain or jump is left as it is.
func (d *Driver) ensureChains(ctx context.Context) error {
	for _, c := range chains {
		if d.run.Run(ctx, d.opts.Iptables, "-w", "-t", c.table, "-L", c.chain, "-n") != nil {
			if err := d.run.Run(ctx, d.opts.Iptables, "-w", "-t", c.table, "-N", c.chain); err != nil {
				return fmt.Errorf("create chain %s: %w", c.chain, err)
			}
		}
		if d.run.Run(ctx, d.opts.Iptables, "-w", "-t", c.table, "-C", c.parent, "-j", c.chain) != nil {
			if err := d.run.Run(ctx, d.opts.Iptables, "-w", "-t", c.table, "-I", c.parent, "-j", c.chain); err != nil {
				return fmt.Errorf("jump from %s to %s: %w", c.parent, c.chain, err)
			}
		}
	}
	return nil
}

// addRules inserts the rules at the top of their chains, last first, so
// that they end up in order and the ACCEPTs precede the REJECTs; on a
// failure the ones added are removed again.
func (d *Driver) addRules(ctx context.Context, rs []rule) error {
	if err := d.ensureChains(ctx); err != nil {
		return err
	}
	// Rules are inserted at position 1 of their chain, in reverse, so
	// that the network's ACCEPTs precede its REJECTs.
	for i := len(rs) - 1; i >= 0; i-- {
		if err := d.run.Run(ctx, d.opts.Iptables, rs[i].cmd("-I")...); err != nil {
			d.removeRules(ctx, rs[i+1:])
			return fmt.Errorf("add firewall rule: %w", err)
		}
	}
	return nil
}

// removeRules deletes exactly the given rules; one already gone is no
// error (the administrator may have flushed the chains).
func (d *Driver) removeRules(ctx context.Context, rs []rule) {
	for _, r := range rs {
		if err := d.run.Run(ctx, d.opts.Iptables, r.cmd("-D")...); err != nil {
			d.log.Debug("remove firewall rule", "rule", r.args, "err", err)
		}
	}
}

// enableForwarding turns on IPv4 forwarding, which a nat network needs,
// as libvirt does (networkEnableIPForwarding).
func (d *Driver) enableForwarding() error {
	if d.opts.SysctlDir == "" {
		return nil
	}
	p := d.opts.SysctlDir + "/net/ipv4/ip_forward"
	if err := os.WriteFile(p, []byte("1\n"), 0o644); err != nil {
		return fmt.Errorf("enable IP forwarding: %w", err)
	}
	return nil
}
