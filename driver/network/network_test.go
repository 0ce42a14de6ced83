package network

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
)

// fakeHost stands in for ip, iptables and dnsmasq: it records every
// command and keeps the links and iptables rules they would have made.
type fakeHost struct {
	mu     sync.Mutex
	cmds   []string
	links  map[string]bool
	chains map[string]bool
	rules  map[string][]string // "table chain" -> rule args, in chain order
}

func newFakeHost() *fakeHost {
	return &fakeHost{links: map[string]bool{}, chains: map[string]bool{}, rules: map[string][]string{}}
}

func (f *fakeHost) Run(ctx context.Context, name string, args ...string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cmds = append(f.cmds, name+" "+strings.Join(args, " "))
	switch name {
	case "ip":
		if len(args) > 3 && args[0] == "link" && args[1] == "add" {
			f.links[args[3]] = true
		}
		if len(args) > 3 && args[0] == "link" && args[1] == "del" {
			delete(f.links, args[3])
		}
	case "iptables":
		// -w -t TABLE OP CHAIN ARGS...
		table, op, chain, rest := args[2], args[3], args[4], strings.Join(args[5:], " ")
		key := table + " " + chain
		switch op {
		case "-L":
			if !f.chains[key] {
				return os.ErrNotExist
			}
		case "-N":
			f.chains[key] = true
		case "-C":
			if !slices.Contains(f.rules[key], rest) {
				return os.ErrNotExist
			}
		case "-I":
			f.rules[key] = append([]string{rest}, f.rules[key]...)
		case "-D":
			i := slices.Index(f.rules[key], rest)
			if i < 0 {
				return os.ErrNotExist
			}
			f.rules[key] = slices.Delete(f.rules[key], i, i+1)
		}
	}
	return nil
}

func (f *fakeHost) linkExists(name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.links[name]
}

// chainRules returns the rules of one of govirtd's chains as iptables-save
// prints them, with the chain renamed to libvirt's.
func (f *fakeHost) chainRules(table, chain string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, r := range f.rules[table+" "+chain] {
		out = append(out, "-A "+strings.Replace(chain, "GOVIRTD_", "LIBVIRT_", 1)+" "+r)
	}
	return out
}

func newTestDriver(t *testing.T, dir string, host *fakeHost, defineDefault bool) *Driver {
	t.Helper()
	d, err := New(context.Background(), Options{
		StateDir: dir, Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Runner: host, LinkExists: host.linkExists, DefineDefault: defineDefault,
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDefineAndStartLikeLibvirt(t *testing.T) {
	host := newFakeHost()
	d := newTestDriver(t, t.TempDir(), host, false)
	ctx := context.Background()
	n, err := d.NetworkDefineXML(ctx, readTestdata(t, "n1.in.xml"), 0)
	if err != nil {
		t.Fatal(err)
	}
	got, err := d.NetworkGetXMLDesc(ctx, n, 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := readTestdata(t, "n1.inactive.xml"); got != want {
		t.Errorf("inactive XML:\n%s\nwant (libvirtd's):\n%s", got, want)
	}
	if err := d.NetworkCreate(ctx, n); err != nil {
		t.Fatal(err)
	}
	got, _ = d.NetworkGetXMLDesc(ctx, n, 0)
	if want := readTestdata(t, "n1.live.xml"); got != want {
		t.Errorf("live XML:\n%s\nwant (libvirtd's):\n%s", got, want)
	}
	if inactive, _ := d.NetworkGetXMLDesc(ctx, n, libvirt.NetworkXMLInactive); inactive != readTestdata(t, "n1.inactive.xml") {
		t.Errorf("--inactive XML of the running network:\n%s", inactive)
	}
	if !host.linkExists("virbr0") {
		t.Fatalf("bridge virbr0 not created; commands: %q", host.cmds)
	}
	for _, want := range []string{
		"ip link add name virbr0 address 52:54:00:92:f5:d6 type bridge forward_delay 0 stp_state 1",
		"ip addr add 10.99.0.1/24 broadcast + dev virbr0",
		"ip link set dev virbr0 up",
		"dnsmasq --conf-file=" + d.dnsmasqPaths("n1").Conf,
	} {
		if !slices.Contains(host.cmds, want) {
			t.Errorf("missing command %q in %q", want, host.cmds)
		}
	}
	// The rules, chain by chain, are libvirt's (but for the chain names).
	var rules []string
	for _, c := range []struct{ table, chain string }{
		{"filter", "GOVIRTD_FWI"}, {"filter", "GOVIRTD_FWO"}, {"filter", "GOVIRTD_FWX"},
		{"filter", "GOVIRTD_INP"}, {"filter", "GOVIRTD_OUT"}, {"nat", "GOVIRTD_PRT"},
	} {
		rules = append(rules, host.chainRules(c.table, c.chain)...)
	}
	want := strings.Split(strings.TrimSpace(readTestdata(t, "n1.iptables")), "\n")
	// iptables-save prints the conntrack states in its own order.
	got2 := strings.Join(rules, "\n")
	got2 = strings.ReplaceAll(got2, "ESTABLISHED,RELATED", "RELATED,ESTABLISHED")
	if got2 != strings.Join(want, "\n") {
		t.Errorf("iptables rules:\n%s\nwant (libvirtd's):\n%s", got2, strings.Join(want, "\n"))
	}
	if err := d.NetworkDestroy(ctx, n); err != nil {
		t.Fatal(err)
	}
	if host.linkExists("virbr0") {
		t.Error("bridge left after destroy")
	}
	for key, rs := range host.rules {
		if len(rs) != 0 && !strings.HasSuffix(key, "INPUT") && !strings.HasSuffix(key, "OUTPUT") && !strings.HasSuffix(key, "FORWARD") && !strings.HasSuffix(key, "POSTROUTING") {
			t.Errorf("rules left in %s after destroy: %q", key, rs)
		}
	}
	if err := d.NetworkDestroy(ctx, n); !compat.Is(err, libvirt.ErrOperationInvalid) || err.Error() != "Requested operation is not valid: network 'n1' is not active" {
		t.Errorf("destroy of an inactive network: %v", err)
	}
}

func TestDnsmasqConfLikeLibvirt(t *testing.T) {
	def, err := parse(readTestdata(t, "n1.inactive.xml"))
	if err != nil {
		t.Fatal(err)
	}
	p := dnsmasqPaths{Conf: "/x/n1.conf", Leases: "/var/lib/libvirt/dnsmasq/n1.leases", PID: "/run/libvirt/network/n1.pid"}
	got := dnsmasqConf(def, p)
	// govirtd names itself; dnsmasq keeps the leases itself where libvirt
	// runs its lease helper; the static host is a line of the file where
	// libvirt has a hosts file (n1.hostsfile held the same
	// "52:54:00:00:00:05,10.99.0.5,h5"); no DNS hosts, no addn-hosts.
	want := strings.Replace(readTestdata(t, "n1.dnsmasq.conf"), "created by libvirt", "created by govirtd", 1)
	want = strings.Replace(want, "dhcp-hostsfile=/var/lib/libvirt/dnsmasq/n1.hostsfile\n",
		"dhcp-host=52:54:00:00:00:05,10.99.0.5,h5\ndhcp-leasefile=/var/lib/libvirt/dnsmasq/n1.leases\n", 1)
	want = strings.Replace(want, "addn-hosts=/var/lib/libvirt/dnsmasq/n1.addnhosts\n", "", 1)
	if got != want {
		t.Errorf("dnsmasq conf:\n%s\nwant:\n%s", got, want)
	}
}

func TestBridgeNamesAndDefaults(t *testing.T) {
	host := newFakeHost()
	host.links["virbr1"] = true // a host device: skipped, as libvirt does
	d := newTestDriver(t, t.TempDir(), host, false)
	ctx := context.Background()
	var bridges []string
	for _, name := range []string{"a", "b", "c"} {
		n, err := d.NetworkDefineXML(ctx, "<network><name>"+name+"</name></network>", 0)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := d.NetworkGetBridgeName(ctx, n)
		bridges = append(bridges, b)
		x, _ := d.NetworkGetXMLDesc(ctx, n, 0)
		if !strings.Contains(x, "<mac address='52:54:00:") || !strings.Contains(x, "stp='on' delay='0'") || !strings.Contains(x, "<uuid>") {
			t.Errorf("defaults missing in %s", x)
		}
	}
	if !slices.Equal(bridges, []string{"virbr0", "virbr2", "virbr3"}) {
		t.Errorf("bridges %q", bridges)
	}
	// A template, and a name already taken.
	n, err := d.NetworkDefineXML(ctx, "<network><name>t</name><bridge name='gvt%d'/></network>", 0)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := d.NetworkGetBridgeName(ctx, n); b != "gvt0" {
		t.Errorf("template gave %q", b)
	}
	_, err = d.NetworkDefineXML(ctx, "<network><name>u</name><bridge name='virbr0'/></network>", 0)
	if err == nil || err.Error() != "internal error: bridge name 'virbr0' already in use." {
		t.Errorf("taken bridge: %v", err)
	}
	// Redefining keeps the UUID, the bridge and the MAC.
	x1, _ := d.NetworkGetXMLDesc(ctx, libvirt.Network{UUID: mustLookup(t, d, "a").UUID}, 0)
	if _, err := d.NetworkDefineXML(ctx, "<network><name>a</name></network>", 0); err != nil {
		t.Fatal(err)
	}
	x2, _ := d.NetworkGetXMLDesc(ctx, libvirt.Network{UUID: mustLookup(t, d, "a").UUID}, 0)
	if x1 != x2 {
		t.Errorf("redefinition changed the network:\n%s\n%s", x1, x2)
	}
}

func mustLookup(t *testing.T, d *Driver, name string) libvirt.Network {
	t.Helper()
	n, err := d.NetworkLookupByName(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct {
		xml  string
		code libvirt.ErrorNumber
		msg  string
	}{
		{"<network><name>x</nme></network>", libvirt.ErrXMLDetail, "(network_definition):1: "},
		{"", libvirt.ErrXMLDetail, "(network_definition):1: Document is empty"},
		{"<domain/>", libvirt.ErrXMLError, "XML error: expecting root element of 'network', not 'domain'"},
		{"<network/>", libvirt.ErrNoName, "missing name information"},
		{"<network><name>a/b</name></network>", libvirt.ErrXMLDetail, "invalid char in name: /"},
		// A newline would start a line of dnsmasq configuration.
		{"<network><name>a&#10;dhcp-script=/bin/x</name></network>", libvirt.ErrXMLDetail, "invalid char in name: \n"},
		{"<network><name>a</name><domain name='x&#10;dhcp-script=/bin/x'/></network>", libvirt.ErrXMLError, "XML error: Invalid domain name"},
		{"<network><name>a</name><uuid>zz</uuid></network>", libvirt.ErrXMLError, "XML error: malformed uuid element"},
		{"<network><name>a</name><forward mode='route'/></network>", libvirt.ErrConfigUnsupported, "unsupported configuration: forward mode 'route' is not supported by govirtd"},
		{"<network><name>a</name><ip address='10.0.0.1' netmask='255.255.255.0'><dhcp><range start='10.0.1.2' end='10.0.1.9'/></dhcp></ip></network>",
			libvirt.ErrInternalError, "internal error: range 10.0.1.2 - 10.0.1.9 is not entirely within network 10.0.0.1/24"},
		{"<network><name>a</name><bridge name='-x'/></network>", libvirt.ErrXMLError, "XML error: invalid bridge name '-x'"},
		{"<network><name>a</name><ip address='nope'/></network>", libvirt.ErrXMLError, "XML error: Invalid address 'nope' in network 'a'"},
	} {
		_, err := parse(c.xml)
		if err == nil {
			t.Errorf("%s: accepted", c.xml)
			continue
		}
		le := compat.As(err)
		if le.Code != c.code || !strings.HasPrefix(le.Message(), c.msg) {
			t.Errorf("%s: got %v (code %d, domain %d), want %d %q", c.xml, le.Message(), le.Code, le.Domain, c.code, c.msg)
		}
	}
}

func TestPersistenceAutostartAndDefault(t *testing.T) {
	dir := t.TempDir()
	host := newFakeHost()
	d := newTestDriver(t, dir, host, true)
	ctx := context.Background()
	def := mustLookup(t, d, "default")
	if on, _ := d.NetworkIsActive(ctx, def); !on {
		t.Fatal("default network not autostarted")
	}
	if b, _ := d.NetworkGetBridgeName(ctx, def); b != "virbr0" {
		t.Errorf("default bridge %q", b)
	}
	x, _ := d.NetworkGetXMLDesc(ctx, def, libvirt.NetworkXMLInactive)
	for _, want := range []string{"<forward mode='nat'/>", "<ip address='192.168.122.1' netmask='255.255.255.0'>", "<range start='192.168.122.2' end='192.168.122.254'/>"} {
		if !strings.Contains(x, want) {
			t.Errorf("default network lacks %s:\n%s", want, x)
		}
	}
	tr, err := d.NetworkCreateXML(ctx, "<network><name>tr</name><ip address='10.5.0.1' prefix='24'/></network>", 0)
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := d.NetworkIsPersistent(ctx, tr); p {
		t.Error("net-create network is persistent")
	}
	if err := d.NetworkUndefine(ctx, tr); err == nil || err.Error() != "Requested operation is not valid: can't undefine transient network" {
		t.Errorf("undefine transient: %v", err)
	}
	// A restart (the bridges still exist) finds both running; the
	// undefined default stays gone and is not defined again.
	d2 := newTestDriver(t, dir, host, true)
	for _, name := range []string{"default", "tr"} {
		if on, _ := d2.NetworkIsActive(ctx, mustLookup(t, d2, name)); !on {
			t.Errorf("%s not active after restart", name)
		}
	}
	if err := d2.NetworkDestroy(ctx, mustLookup(t, d2, "tr")); err != nil {
		t.Fatal(err)
	}
	if _, err := d2.NetworkLookupByName(ctx, "tr"); !compat.Is(err, libvirt.ErrNoNetwork) {
		t.Errorf("destroyed transient network still there: %v", err)
	}
	dn := mustLookup(t, d2, "default")
	if err := d2.NetworkDestroy(ctx, dn); err != nil {
		t.Fatal(err)
	}
	if err := d2.NetworkUndefine(ctx, dn); err != nil {
		t.Fatal(err)
	}
	d3 := newTestDriver(t, dir, host, true)
	if all, _ := d3.ListAllNetworks(ctx, 0); len(all) != 0 {
		t.Errorf("networks after undefine and restart: %v", all)
	}
}

func TestListFlags(t *testing.T) {
	host := newFakeHost()
	d := newTestDriver(t, t.TempDir(), host, false)
	ctx := context.Background()
	a, _ := d.NetworkDefineXML(ctx, "<network><name>a</name></network>", 0)
	d.NetworkDefineXML(ctx, "<network><name>b</name></network>", 0)
	d.NetworkCreate(ctx, a)
	d.NetworkSetAutostart(ctx, a, true)
	names := func(flags libvirt.ConnectListAllNetworksFlags) []string {
		ns, _ := d.ListAllNetworks(ctx, flags)
		var out []string
		for _, n := range ns {
			out = append(out, n.Name)
		}
		return out
	}
	for _, c := range []struct {
		flags libvirt.ConnectListAllNetworksFlags
		want  []string
	}{
		{0, []string{"a", "b"}},
		{libvirt.ConnectListNetworksActive, []string{"a"}},
		{libvirt.ConnectListNetworksInactive, []string{"b"}},
		{libvirt.ConnectListNetworksAutostart, []string{"a"}},
		{libvirt.ConnectListNetworksNoAutostart, []string{"b"}},
		{libvirt.ConnectListNetworksTransient, nil},
	} {
		if got := names(c.flags); !slices.Equal(got, c.want) {
			t.Errorf("flags %d: %v, want %v", c.flags, got, c.want)
		}
	}
	if got := d.NetworkNames(false); !slices.Equal(got, []string{"b"}) {
		t.Errorf("defined names %v", got)
	}
}

func TestLeases(t *testing.T) {
	def, err := parse(readTestdata(t, "n1.inactive.xml"))
	if err != nil {
		t.Fatal(err)
	}
	data := "1700000100 52:54:00:00:00:05 10.99.0.5 h5 01:52:54:00:00:00:05\n" +
		"1600000000 52:54:00:00:00:06 10.99.0.6 old *\n" +
		"0 52:54:00:00:00:07 10.99.0.7 * *\n" +
		"garbage\n"
	got := parseLeases(strings.NewReader(data), def, "", 1700000000)
	if len(got) != 2 {
		t.Fatalf("leases %+v", got)
	}
	l := got[0]
	if l.Ipaddr != "10.99.0.5" || l.Prefix != 24 || l.Iface != "virbr0" || l.Mac[0] != "52:54:00:00:00:05" || l.Hostname[0] != "h5" || l.Expirytime != 1700000100 || l.Clientid[0] != "01:52:54:00:00:00:05" {
		t.Errorf("lease %+v", l)
	}
	if len(got[1].Hostname) != 0 {
		t.Errorf("'*' hostname kept: %+v", got[1])
	}
	if only := parseLeases(strings.NewReader(data), def, "52:54:00:00:00:07", 1700000000); len(only) != 1 || only[0].Ipaddr != "10.99.0.7" {
		t.Errorf("by MAC: %+v", only)
	}
}

func TestDNSHostsAndRefusals(t *testing.T) {
	def, err := parse(`<network><name>d</name><bridge name='gvd0'/><mtu size='9000'/>
  <dns enable='no'><host ip='10.7.0.9'><hostname>a</hostname><hostname>a.example</hostname></host></dns>
  <ip address='10.7.0.1' prefix='24'><dhcp><range start='10.7.0.10' end='10.7.0.19'><lease expiry='1' unit='hours'/></range></dhcp></ip></network>`)
	if err != nil {
		t.Fatal(err)
	}
	conf := dnsmasqConf(def, dnsmasqPaths{PID: "/p"})
	for _, want := range []string{"host-record=a,a.example,10.7.0.9\n", "strict-order\nport=0\npid-file=/p\n", "dhcp-range=10.7.0.10,10.7.0.19,255.255.255.0,1h\n", "dhcp-lease-max=10\n"} {
		if !strings.Contains(conf, want) {
			t.Errorf("conf lacks %q:\n%s", want, conf)
		}
	}
	if args := strings.Join(bridgeAddArgs(def), " "); !strings.Contains(args, " mtu 9000 ") {
		t.Errorf("bridge add %s", args)
	}
	for _, doc := range []string{
		"<network><name>x</name><dns><forwarder addr='8.8.8.8'/></dns></network>",
		"<network><name>x</name><ip address='10.0.0.1' prefix='24'><tftp root='/srv'/></ip></network>",
		"<network xmlns:dnsmasq='http://libvirt.org/schemas/network/dnsmasq/1.0'><name>x</name><dnsmasq:options><dnsmasq:option value='log-queries'/></dnsmasq:options></network>",
		"<network><name>x</name><ip family='ipv6' address='fd00::1' prefix='64'/></network>",
	} {
		if _, err := parse(doc); !compat.Is(err, libvirt.ErrConfigUnsupported) {
			t.Errorf("%s: %v, want unsupported configuration", doc, err)
		}
	}
}

func TestForwardModeBridge(t *testing.T) {
	host := newFakeHost()
	d := newTestDriver(t, t.TempDir(), host, false)
	ctx := context.Background()
	for name, doc := range map[string]string{
		"hb":     "<network><name>hb</name><forward mode='bridge'/><bridge name='br0'/></network>",
		"noname": "<network><name>noname</name><forward mode='bridge'/></network>",
	} {
		n, err := d.NetworkDefineXML(ctx, doc, 0)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := d.NetworkCreate(ctx, n); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		x, _ := d.NetworkGetXMLDesc(ctx, n, 0)
		if strings.Contains(x, "<mac") || strings.Contains(x, "stp=") {
			t.Errorf("%s: a host bridge network got defaults:\n%s", name, x)
		}
	}
	if len(host.cmds) != 0 {
		t.Errorf("a host bridge network ran commands: %q", host.cmds)
	}
	if br, err := d.Bridge("hb"); err != nil || br != "br0" {
		t.Errorf("Bridge(hb) = %q, %v", br, err)
	}
	if _, err := d.Bridge("noname"); !compat.Is(err, libvirt.ErrConfigUnsupported) {
		t.Errorf("Bridge(noname) = %v", err)
	}
	if _, err := d.Bridge("nope"); err == nil || err.Error() != "Network not found: no network with matching name 'nope'" {
		t.Errorf("Bridge(nope) = %v", err)
	}
}

func TestUpdateDHCPHost(t *testing.T) {
	host := newFakeHost()
	d := newTestDriver(t, t.TempDir(), host, false)
	ctx := context.Background()
	n, err := d.NetworkDefineXML(ctx, readTestdata(t, "n1.in.xml"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.NetworkCreate(ctx, n); err != nil {
		t.Fatal(err)
	}
	both := libvirt.NetworkUpdateAffectLive | libvirt.NetworkUpdateAffectConfig
	add := "<host mac='52:54:00:00:00:10' name='ten' ip='10.99.0.10'/>"
	if err := d.NetworkUpdate(ctx, n, libvirt.NetworkUpdateCommandAddLast, libvirt.NetworkSectionIPDhcpHost, -1, add, both); err != nil {
		t.Fatal(err)
	}
	conf := readFile(t, d.dnsmasqPaths("n1").Conf)
	if !strings.Contains(conf, "dhcp-host=52:54:00:00:00:05,10.99.0.5,h5\ndhcp-host=52:54:00:00:00:10,10.99.0.10,ten\n") {
		t.Errorf("dnsmasq conf after add:\n%s", conf)
	}
	if !slices.Contains(host.cmds, "dnsmasq --conf-file="+d.dnsmasqPaths("n1").Conf) {
		t.Errorf("dnsmasq not restarted: %q", host.cmds)
	}
	for _, flags := range []libvirt.NetworkXMLFlags{0, libvirt.NetworkXMLInactive} {
		if x, _ := d.NetworkGetXMLDesc(ctx, n, flags); !strings.Contains(x, "<host mac='52:54:00:00:00:10' name='ten' ip='10.99.0.10'/>") {
			t.Errorf("XML (flags %d) lacks the new host:\n%s", flags, x)
		}
	}
	if saved := readFile(t, d.configPath("n1")); !strings.Contains(saved, "name='ten'") {
		t.Errorf("saved definition lacks the new host:\n%s", saved)
	}
	err = d.NetworkUpdate(ctx, n, libvirt.NetworkUpdateCommandAddFirst, libvirt.NetworkSectionIPDhcpHost, -1, "<host mac='52:54:00:00:00:11' name='ten' ip='10.99.0.11'/>", both)
	if err == nil || err.Error() != `Requested operation is not valid: there is an existing dhcp host entry in network 'n1' that matches "<host mac='52:54:00:00:00:11' name='ten' ip='10.99.0.11'/>"` {
		t.Errorf("duplicate add: %v", err)
	}
	if err := d.NetworkUpdate(ctx, n, libvirt.NetworkUpdateCommandModify, libvirt.NetworkSectionIPDhcpHost, -1, "<host mac='52:54:00:00:00:10' name='ten' ip='10.99.0.12'/>", libvirt.NetworkUpdateAffectLive); err != nil {
		t.Fatal(err)
	}
	if x, _ := d.NetworkGetXMLDesc(ctx, n, 0); !strings.Contains(x, "ip='10.99.0.12'") {
		t.Errorf("live XML after modify:\n%s", x)
	}
	if x, _ := d.NetworkGetXMLDesc(ctx, n, libvirt.NetworkXMLInactive); !strings.Contains(x, "ip='10.99.0.10'") {
		t.Errorf("a live-only modify changed the config:\n%s", x)
	}
	if err := d.NetworkUpdate(ctx, n, libvirt.NetworkUpdateCommandDelete, libvirt.NetworkSectionIPDhcpHost, -1, "<host mac='52:54:00:00:00:10'/>", both); err != nil {
		t.Fatal(err)
	}
	if conf := readFile(t, d.dnsmasqPaths("n1").Conf); strings.Contains(conf, "52:54:00:00:00:10") || !strings.Contains(conf, "dhcp-host=52:54:00:00:00:05,10.99.0.5,h5\n") {
		t.Errorf("dnsmasq conf after delete:\n%s", conf)
	}
	for _, c := range []struct {
		cmd     libvirt.NetworkUpdateCommand
		section libvirt.NetworkUpdateSection
		xml     string
		want    string
	}{
		{libvirt.NetworkUpdateCommandDelete, libvirt.NetworkSectionIPDhcpHost, "<host mac='52:54:00:00:00:99'/>", "Requested operation is not valid: couldn't locate a matching dhcp host entry in network 'n1'"},
		{libvirt.NetworkUpdateCommandAddLast, libvirt.NetworkSectionIPDhcpHost, "<range start='10.99.0.2' end='10.99.0.3'/>", "XML error: unexpected element <range>, expecting <host>, while updating network 'n1'"},
		{libvirt.NetworkUpdateCommandAddLast, libvirt.NetworkSectionIPDhcpRange, "<range start='10.99.0.2' end='10.99.0.3'/>", "this function is not supported by the connection driver: can't update 'dhcp range' section of network 'n1'"},
		{libvirt.NetworkUpdateCommandAddLast, libvirt.NetworkSectionIPDhcpHost, "<host mac='52:54:00:00:00:12' name='a&#10;dhcp-script=/x' ip='10.99.0.13'/>", "XML error: Invalid hostname"},
	} {
		err := d.NetworkUpdate(ctx, n, c.cmd, c.section, -1, c.xml, both)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%s: %v, want %s", c.xml, err, c.want)
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
