package network

import (
	"crypto/rand"
	"fmt"
	"net"
	"strings"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/compat/xmlfmt"
	"github.com/govirtd/govirtd/compat/xmlwf"
)

// Forward modes govirtd runs. libvirt's others (route, open, passthrough,
// private, vepa, hostdev) are refused at define time.
const (
	modeNone   = "" // isolated: no <forward>
	modeNAT    = "nat"
	modeBridge = "bridge"
)

// fromXMLUtil is VIR_FROM_XML, libvirt's XML utility functions.
const fromXMLUtil = compat.Domain(5)

func xmlErr(format string, args ...any) error {
	return compat.Errorf(libvirt.ErrXMLError, compat.FromNetwork, format, args...)
}

func unsupported(format string, args ...any) error {
	return compat.Errorf(libvirt.ErrConfigUnsupported, compat.FromNetwork, format, args...)
}

// parse reads network XML as virNetworkDefParseString does and checks
// what govirtd can run. It does not fill in defaults (see fillDefaults).
func parse(doc string) (*libvirtxml.Network, error) {
	if err := wellFormed(doc); err != nil {
		return nil, err
	}
	def := &libvirtxml.Network{}
	if err := def.Unmarshal(doc); err != nil {
		return nil, xmlErr("%v", err)
	}
	// A blank name is no name: it would not survive formatting (found by
	// FuzzParse), and it names files and a dnsmasq instance.
	if strings.TrimSpace(def.Name) == "" {
		return nil, &compat.Error{Code: libvirt.ErrNoName, Domain: compat.FromNetwork, Int1: -1}
	}
	// The name is a file name in the state directory.
	// virXMLCheckIllegalChars, raised from VIR_FROM_XML. The name is a
	// file name and goes into dnsmasq's configuration: no '/', and no
	// control character that could start a line of its own there.
	if i := strings.IndexFunc(def.Name, func(r rune) bool { return r == '/' || r < 0x20 || r == 0x7f }); i >= 0 {
		return nil, compat.Errorf(libvirt.ErrXMLDetail, fromXMLUtil, "invalid char in name: %s", def.Name[i:i+1])
	}
	if def.Domain != nil && strings.IndexFunc(def.Domain.Name, func(r rune) bool { return r <= ' ' || r == '/' || r == 0x7f }) >= 0 {
		return nil, xmlErr("Invalid domain name '%s' in network '%s'", def.Domain.Name, def.Name)
	}
	if def.UUID != "" {
		if _, err := compat.ParseUUID(def.UUID); err != nil {
			return nil, xmlErr("malformed uuid element")
		}
	}
	if err := validate(def); err != nil {
		return nil, err
	}
	return def, nil
}

// wellFormed checks syntax and the root element first, so that errors
// read as libvirt's (VIR_ERR_XML_DETAIL "(network_definition):LINE: ...").
func wellFormed(doc string) error {
	root, err := xmlwf.Check(doc, "(network_definition)", compat.FromNetwork)
	if err == nil && root != "network" {
		err = xmlErr("expecting root element of 'network', not '%s'", root)
	}
	return err
}

// bridgeName is the network's bridge ("" for a forward mode 'bridge'
// network without one).
func bridgeName(def *libvirtxml.Network) string {
	if def.Bridge == nil {
		return ""
	}
	return def.Bridge.Name
}

// forwardMode is the effective mode: <forward/> without a mode is nat.
func forwardMode(def *libvirtxml.Network) string {
	if def.Forward == nil {
		return modeNone
	}
	if def.Forward.Mode == "" {
		return modeNAT
	}
	return def.Forward.Mode
}

// validate refuses what govirtd cannot set up, rather than starting a
// network that silently lacks part of its definition.
func validate(def *libvirtxml.Network) error {
	if def.Bridge != nil && def.Bridge.Name != "" {
		if err := checkIfName(def.Bridge.Name, true); err != nil {
			return err
		}
	}
	mode := forwardMode(def)
	switch mode {
	case modeNone, modeNAT:
	case modeBridge:
		// Without a bridge name libvirt defines and starts it too (its
		// NICs would need <forward><interface>, which govirtd refuses
		// at domain start).
		if len(def.IPs) > 0 || def.DNS != nil || def.Domain != nil || def.MAC != nil {
			return unsupported("Unsupported <ip>, <dns>, <domain> or <mac> element in network %s with forward mode='%s'", def.Name, mode)
		}
		return nil
	default:
		return unsupported("forward mode '%s' is not supported by govirtd", mode)
	}
	if def.Forward != nil && (def.Forward.Dev != "" || len(def.Forward.Interfaces) > 0 || len(def.Forward.PFs) > 0) {
		return unsupported("<forward dev> is not supported by govirtd")
	}
	if def.MAC != nil && def.MAC.Address != "" {
		if _, err := net.ParseMAC(def.MAC.Address); err != nil {
			return xmlErr("Invalid bridge mac address '%s' in network '%s'", def.MAC.Address, def.Name)
		}
	}
	if len(def.Routes) > 0 || def.VirtualPort != nil || len(def.PortGroups) > 0 || def.Bandwidth != nil || def.VLAN != nil {
		return unsupported("<route>, <virtualport>, <portgroup>, <bandwidth> and <vlan> are not supported by govirtd")
	}
	if def.DnsmasqOptions != nil {
		return unsupported("<dnsmasq:options> is not supported by govirtd")
	}
	if err := checkDNS(def); err != nil {
		return err
	}
	v4 := 0
	for i := range def.IPs {
		ip := &def.IPs[i]
		if ip.Family != "" && ip.Family != "ipv4" {
			return unsupported("IPv6 addresses are not supported by govirtd (network '%s')", def.Name)
		}
		if net.ParseIP(ip.Address).To4() == nil {
			return xmlErr("Invalid address '%s' in network '%s'", ip.Address, def.Name)
		}
		if _, err := ipNet(ip); err != nil {
			return err
		}
		if ip.TFTP != nil || (ip.DHCP != nil && len(ip.DHCP.Bootp) > 0) {
			return unsupported("<tftp> and <bootp> are not supported by govirtd")
		}
		if ip.DHCP != nil {
			v4++
			if err := checkDHCP(def.Name, ip); err != nil {
				return err
			}
		}
	}
	if v4 > 1 {
		return unsupported("Multiple IPv4 dhcp sections found -- dhcp is supported only for a single IPv4 address on each network")
	}
	return nil
}

// checkDNS allows what dnsmasqConf writes: DNS on or off, and <host>
// entries (host-record lines).
func checkDNS(def *libvirtxml.Network) error {
	dns := def.DNS
	if dns == nil {
		return nil
	}
	if len(dns.Forwarders) > 0 || len(dns.TXTs) > 0 || len(dns.SRVs) > 0 || (dns.ForwardPlainNames != "" && dns.ForwardPlainNames != "yes") {
		return unsupported("<dns> forwarders, txt and srv records and forwardPlainNames='no' are not supported by govirtd")
	}
	if dns.Enable != "" && dns.Enable != "yes" && dns.Enable != "no" {
		return xmlErr("Invalid dns enable setting '%s' in network '%s'", dns.Enable, def.Name)
	}
	for _, h := range dns.Host {
		if net.ParseIP(h.IP) == nil {
			return xmlErr("Invalid IP address in network '%s' DNS HOST record", def.Name)
		}
		if len(h.Hostnames) == 0 {
			return xmlErr("Missing hostname in network '%s' DNS HOST record", def.Name)
		}
		for _, n := range h.Hostnames {
			if n.Hostname == "" || strings.ContainsAny(n.Hostname, " ,\t\r\n#") {
				return xmlErr("Invalid hostname '%s' in network '%s' DNS HOST record", n.Hostname, def.Name)
			}
		}
	}
	return nil
}

// checkIfName refuses names the kernel would refuse (IFNAMSIZ) or that
// could be read as options by ip and iptables.
func checkIfName(name string, template bool) error {
	n := name
	if template {
		n = strings.Replace(n, "%d", "0", 1)
	}
	if len(n) == 0 || len(n) > 15 || strings.HasPrefix(n, "-") || strings.ContainsAny(n, "/ %:\t\n") {
		return xmlErr("invalid bridge name '%s'", name)
	}
	return nil
}

// ipNet returns the <ip>'s address and subnet.
func ipNet(ip *libvirtxml.NetworkIP) (*net.IPNet, error) {
	addr := net.ParseIP(ip.Address).To4()
	if addr == nil {
		return nil, xmlErr("Invalid address '%s' in network ip definition", ip.Address)
	}
	var mask net.IPMask
	switch {
	case ip.Netmask != "" && ip.Prefix != 0:
		return nil, xmlErr("Network ip definition '%s' cannot have both a prefix and a netmask", ip.Address)
	case ip.Netmask != "":
		m := net.ParseIP(ip.Netmask).To4()
		if m == nil {
			return nil, xmlErr("Invalid netmask '%s' in network ip definition", ip.Netmask)
		}
		mask = net.IPMask(m)
		if ones, bits := mask.Size(); bits == 0 || ones == 0 {
			return nil, xmlErr("Invalid netmask '%s' in network ip definition", ip.Netmask)
		}
	case ip.Prefix != 0:
		if ip.Prefix > 32 {
			return nil, xmlErr("Invalid prefix %d in network ip definition", ip.Prefix)
		}
		mask = net.CIDRMask(int(ip.Prefix), 32)
	default:
		// virSocketAddrPrefix: the classful default.
		mask = addr.DefaultMask()
	}
	return &net.IPNet{IP: addr, Mask: mask}, nil
}

func checkDHCP(name string, ip *libvirtxml.NetworkIP) error {
	n, _ := ipNet(ip)
	subnet := &net.IPNet{IP: n.IP.Mask(n.Mask), Mask: n.Mask}
	for _, r := range ip.DHCP.Ranges {
		s, e := net.ParseIP(r.Start).To4(), net.ParseIP(r.End).To4()
		if s == nil || e == nil {
			return xmlErr("Invalid dhcp range '%s' to '%s' in network '%s'", r.Start, r.End, name)
		}
		if !subnet.Contains(s) || !subnet.Contains(e) {
			// virSocketAddrGetRange's error: the <ip> address, not the subnet.
			return compat.Errorf(libvirt.ErrInternalError, compat.FromNone,
				"range %s - %s is not entirely within network %s/%d", r.Start, r.End, ip.Address, prefixLen(n))
		}
		if ipToUint(e) < ipToUint(s) {
			return xmlErr("Reversed DHCP range '%s' to '%s' in network '%s'", r.Start, r.End, name)
		}
	}
	for _, h := range ip.DHCP.Hosts {
		if h.MAC != "" {
			if _, err := net.ParseMAC(h.MAC); err != nil {
				return xmlErr("Cannot parse MAC address '%s' in network '%s'", h.MAC, name)
			}
		}
		if h.IP != "" {
			a := net.ParseIP(h.IP).To4()
			if a == nil {
				return xmlErr("Invalid IP address in static host definition for network '%s'", name)
			}
		}
		if h.MAC == "" && h.Name == "" {
			return xmlErr("Static host definition in IPv4 network '%s' must have mac or name attribute", name)
		}
		// Names and MACs go into dnsmasq's hosts file, one entry a line.
		if strings.ContainsAny(h.Name, ",\n\r ") {
			return xmlErr("Invalid hostname '%s' in network '%s'", h.Name, name)
		}
	}
	return nil
}

func prefixLen(n *net.IPNet) int {
	ones, _ := n.Mask.Size()
	return ones
}

func ipToUint(ip net.IP) uint32 {
	ip = ip.To4()
	return uint32(ip[0])<<24 | uint32(ip[1])<<16 | uint32(ip[2])<<8 | uint32(ip[3])
}

// fillDefaults adds what libvirt adds at define time: a UUID, a bridge
// name (when absent or a template), STP on with delay 0, and the bridge's
// MAC address. bridgeFor allocates the name.
func fillDefaults(def *libvirtxml.Network, bridgeFor func(template string) (string, error)) error {
	if def.UUID == "" {
		def.UUID = newUUID()
	} else {
		u, _ := compat.ParseUUID(def.UUID)
		def.UUID = compat.FormatUUID(u)
	}
	if forwardMode(def) == modeBridge {
		return nil
	}
	if def.Forward != nil && def.Forward.Mode == "" {
		def.Forward.Mode = modeNAT
	}
	if def.Bridge == nil {
		def.Bridge = &libvirtxml.NetworkBridge{}
	}
	if def.Bridge.Name == "" || strings.Contains(def.Bridge.Name, "%d") {
		tmpl := def.Bridge.Name
		if tmpl == "" {
			tmpl = "virbr%d"
		}
		name, err := bridgeFor(tmpl)
		if err != nil {
			return err
		}
		def.Bridge.Name = name
	}
	if def.Bridge.STP == "" {
		def.Bridge.STP = "on"
	}
	if def.Bridge.Delay == "" {
		def.Bridge.Delay = "0"
	}
	if def.MAC == nil || def.MAC.Address == "" {
		def.MAC = &libvirtxml.NetworkMAC{Address: randomMAC()}
	}
	return nil
}

// liveDef is the definition as an active network shows it: libvirt adds
// NAT's default port range when it starts the network.
func liveDef(def *libvirtxml.Network) (*libvirtxml.Network, error) {
	c, err := copyDef(def)
	if err != nil {
		return nil, err
	}
	if forwardMode(c) == modeNAT {
		if c.Forward.NAT == nil {
			c.Forward.NAT = &libvirtxml.NetworkForwardNAT{}
		}
		if len(c.Forward.NAT.Ports) == 0 {
			c.Forward.NAT.Ports = []libvirtxml.NetworkForwardNATPort{{Start: 1024, End: 65535}}
		}
	}
	return c, nil
}

func copyDef(def *libvirtxml.Network) (*libvirtxml.Network, error) {
	s, err := def.Marshal()
	if err != nil {
		return nil, fmt.Errorf("copy network definition: %w", err)
	}
	c := &libvirtxml.Network{}
	if err := c.Unmarshal(s); err != nil {
		return nil, fmt.Errorf("copy network definition: %w", err)
	}
	return c, nil
}

// format prints a definition as libvirt does (virNetworkDefFormat):
// <forward> before <bridge>, single quotes, two-space indentation.
func format(def *libvirtxml.Network) (string, error) {
	s, err := def.Marshal()
	if err != nil {
		return "", fmt.Errorf("format network %s: %w", def.Name, err)
	}
	out, err := xmlfmt.ReformatWith(s, xmlfmt.Options{
		ChildOrder: map[string][]string{
			"network": {"name", "uuid", "title", "description", "metadata", "forward", "bridge", "mtu", "mac", "domain", "dns", "ip", "route"},
		},
	})
	if err != nil {
		return "", fmt.Errorf("format network %s: %w", def.Name, err)
	}
	return out, nil
}

// randomMAC is virNetworkSetBridgeMacAddr's: QEMU's 52:54:00 prefix.
func randomMAC() string {
	b := make([]byte, 3)
	rand.Read(b)
	return fmt.Sprintf("52:54:00:%02x:%02x:%02x", b[0], b[1], b[2])
}

func newUUID() string {
	var u [16]byte
	rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return compat.FormatUUID(u)
}
