package compat_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/govirtd/govirtd/test/deps"
)

// In a host's own network namespace (HostOptions.NetNS): what ip and
// iptables-save see there, and which processes run there.

func nsIP(t *testing.T, h *Host, args ...string) Result {
	t.Helper()
	return run(t, 10*time.Second, "ip", append([]string{"-n", h.NetNS}, args...)...)
}

func nsIptablesSave(t *testing.T, h *Host) string {
	t.Helper()
	r := run(t, 10*time.Second, "ip", "netns", "exec", h.NetNS, deps.Command(t, "iptables")+"-save")
	if r.Err != nil {
		t.Fatalf("iptables-save in %s: %s", h.NetNS, r)
	}
	return r.Stdout
}

// nsProcs returns the command lines of the processes in the namespace.
func nsProcs(t *testing.T, h *Host) []string {
	t.Helper()
	out, err := exec.Command(deps.Command(t, "ip"), "netns", "pids", h.NetNS).Output()
	if err != nil {
		t.Fatalf("ip netns pids: %v", err)
	}
	var cmds []string
	for _, p := range strings.Fields(string(out)) {
		if _, err := strconv.Atoi(p); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + p + "/cmdline")
		if err == nil {
			cmds = append(cmds, strings.ReplaceAll(strings.TrimRight(string(b), "\x00"), "\x00", " "))
		}
	}
	return cmds
}

func dnsmasqRunning(t *testing.T, h *Host, network string) bool {
	conf := "--conf-file=" + filepath.Join(h.Dir, "state", "dnsmasq", network+".conf")
	for _, c := range nsProcs(t, h) {
		if strings.Contains(c, "dnsmasq") && strings.Contains(c, conf) {
			return true
		}
	}
	return false
}

func requireNetworkTools(t *testing.T) {
	t.Helper()
	deps.Require(t, "virsh", "ip", "iptables", "/usr/sbin/dnsmasq")
}

const n1XML = `<network>
  <name>n1</name>
  <forward mode='nat'/>
  <ip address='10.99.0.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='10.99.0.2' end='10.99.0.254'/>
      <host mac='52:54:00:00:00:05' name='h5' ip='10.99.0.5'/>
    </dhcp>
  </ip>
</network>
`

// TestNetworkDefaultAndLifecycle: the default network libvirt's package
// defines is there and running on a fresh host; a nat network goes
// through define, start, destroy and undefine with real virsh, and each
// step shows on the namespace's devices, firewall and processes.
func TestNetworkDefaultAndLifecycle(t *testing.T) {
	requireNetworkTools(t)
	h := StartHost(t, HostOptions{NetNS: true})
	uri := h.UnixURI()

	if got := lines(MustVirsh(t, uri, "net-list", "--all")); len(got) != 1 || strings.Join(strings.Fields(got[0]), " ") != "default active yes yes" {
		t.Fatalf("net-list --all on a fresh host: %q", got)
	}
	info := MustVirsh(t, uri, "net-info", "default")
	for _, want := range []string{"Active:         yes", "Persistent:     yes", "Autostart:      yes", "Bridge:         virbr0"} {
		if !strings.Contains(info, want) {
			t.Errorf("net-info default lacks %q:\n%s", want, info)
		}
	}
	if r := nsIP(t, h, "-4", "addr", "show", "dev", "virbr0"); r.Err != nil || !strings.Contains(r.Stdout, "inet 192.168.122.1/24 brd 192.168.122.255") {
		t.Errorf("virbr0 in the namespace: %s", r)
	}
	if !dnsmasqRunning(t, h, "default") {
		t.Errorf("no dnsmasq for the default network: %q", nsProcs(t, h))
	}
	conf := readFile(t, filepath.Join(h.Dir, "state", "dnsmasq", "default.conf"))
	for _, want := range []string{"\ninterface=virbr0\n", "\ndhcp-range=192.168.122.2,192.168.122.254,255.255.255.0\n", "\ndhcp-lease-max=253\n", "\nbind-dynamic\n"} {
		if !strings.Contains(conf, want) {
			t.Errorf("default.conf lacks %q:\n%s", want, conf)
		}
	}

	// A nat network of our own.
	xmlPath := filepath.Join(h.Dir, "n1.xml")
	os.WriteFile(xmlPath, []byte(n1XML), 0o644)
	MustVirsh(t, uri, "net-define", xmlPath)
	inactive := MustVirsh(t, uri, "net-dumpxml", "--inactive", "n1")
	for _, want := range []string{"<forward mode='nat'/>", "<bridge name='virbr1' stp='on' delay='0'/>", "<mac address='52:54:00:", "<uuid>"} {
		if !strings.Contains(inactive, want) {
			t.Errorf("net-dumpxml --inactive lacks %q:\n%s", want, inactive)
		}
	}
	if got := strings.Fields(lines(MustVirsh(t, uri, "net-list", "--inactive"))[0]); strings.Join(got, " ") != "n1 inactive no yes" {
		t.Errorf("net-list --inactive: %q", got)
	}
	MustVirsh(t, uri, "net-start", "n1")
	live := MustVirsh(t, uri, "net-dumpxml", "n1")
	if !strings.Contains(live, "<port start='1024' end='65535'/>") {
		t.Errorf("live XML lacks the NAT port range:\n%s", live)
	}
	if r := nsIP(t, h, "-4", "addr", "show", "dev", "virbr1"); r.Err != nil || !strings.Contains(r.Stdout, "inet 10.99.0.1/24") {
		t.Errorf("virbr1: %s", r)
	}
	rules := nsIptablesSave(t, h)
	for _, want := range []string{
		"-A GOVIRTD_PRT -s 10.99.0.0/24 ! -d 10.99.0.0/24 -p tcp -j MASQUERADE --to-ports 1024-65535",
		"-A GOVIRTD_PRT -s 10.99.0.0/24 ! -d 10.99.0.0/24 -j MASQUERADE",
		"-A GOVIRTD_FWO -s 10.99.0.0/24 -i virbr1 -j ACCEPT",
		"-A GOVIRTD_FWI -o virbr1 -j REJECT --reject-with icmp-port-unreachable",
		"-A GOVIRTD_INP -i virbr1 -p udp -m udp --dport 67 -j ACCEPT",
		"-A POSTROUTING -j GOVIRTD_PRT",
	} {
		if !strings.Contains(rules, want) {
			t.Errorf("iptables lacks %q:\n%s", want, rules)
		}
	}
	if !dnsmasqRunning(t, h, "n1") {
		t.Errorf("no dnsmasq for n1: %q", nsProcs(t, h))
	}
	if c := readFile(t, filepath.Join(h.Dir, "state", "dnsmasq", "n1.conf")); !strings.Contains(c, "\ndhcp-host=52:54:00:00:00:05,10.99.0.5,h5\n") {
		t.Errorf("n1.conf lacks the static host:\n%s", c)
	}
	if b, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward"); len(b) == 0 {
		t.Log("host ip_forward unreadable")
	}
	MustVirsh(t, uri, "net-autostart", "n1")
	if got := strings.Join(strings.Fields(lines(MustVirsh(t, uri, "net-list"))[1]), " "); got != "n1 active yes yes" {
		t.Errorf("net-list after net-autostart: %q", got)
	}

	// Destroy removes exactly n1's bridge, rules and dnsmasq.
	MustVirsh(t, uri, "net-destroy", "n1")
	if r := nsIP(t, h, "link", "show", "dev", "virbr1"); r.Err == nil {
		t.Errorf("virbr1 still exists after net-destroy: %s", r)
	}
	after := nsIptablesSave(t, h)
	if strings.Contains(after, "10.99.0.0/24") || strings.Contains(after, "virbr1") {
		t.Errorf("n1's rules left after net-destroy:\n%s", after)
	}
	if !strings.Contains(after, "-A GOVIRTD_PRT -s 192.168.122.0/24 ! -d 192.168.122.0/24 -j MASQUERADE") {
		t.Errorf("the default network's rules went too:\n%s", after)
	}
	if dnsmasqRunning(t, h, "n1") {
		t.Error("n1's dnsmasq still runs after net-destroy")
	}
	r := Virsh(t, uri, "net-destroy", "n1")
	if r.Err == nil || !strings.Contains(r.Stderr, "Requested operation is not valid: network 'n1' is not active") {
		t.Errorf("second net-destroy: %s", r)
	}
	MustVirsh(t, uri, "net-undefine", "n1")
	r = Virsh(t, uri, "net-info", "n1")
	if r.Err == nil || !strings.Contains(r.Stderr, "Network not found: no network with matching name 'n1'") {
		t.Errorf("net-info after undefine: %s", r)
	}

	// A transient, isolated network: net-create, then gone at destroy.
	iso := filepath.Join(h.Dir, "iso.xml")
	os.WriteFile(iso, []byte("<network><name>iso</name><ip address='10.98.0.1' prefix='24'/></network>"), 0o644)
	MustVirsh(t, uri, "net-create", iso)
	if got := strings.Join(strings.Fields(lines(MustVirsh(t, uri, "net-list", "--transient"))[0]), " "); got != "iso active no no" {
		t.Errorf("net-list --transient: %q", got)
	}
	isoRules := nsIptablesSave(t, h)
	if !strings.Contains(isoRules, "-A GOVIRTD_FWO -i virbr1 -j REJECT") || strings.Contains(isoRules, "10.98.0.0/24 ! -d") {
		t.Errorf("isolated network rules:\n%s", isoRules)
	}
	MustVirsh(t, uri, "net-destroy", "iso")
	if got := lines(MustVirsh(t, uri, "net-list", "--all", "--name")); strings.Join(got, ",") != "default" {
		t.Errorf("networks after destroying the transient one: %q", got)
	}

	// The default network survives a daemon restart running, with its
	// dnsmasq.
	h.Restart()
	if got := strings.Join(strings.Fields(lines(MustVirsh(t, uri, "net-list"))[0]), " "); got != "default active yes yes" {
		t.Errorf("net-list after restart: %q", got)
	}
	if !dnsmasqRunning(t, h, "default") {
		t.Error("no dnsmasq for default after restart")
	}
}

// TestNetworkReadOnly: the read-only socket answers queries and refuses
// every change.
func TestNetworkReadOnly(t *testing.T) {
	requireNetworkTools(t)
	h := StartHost(t, HostOptions{NetNS: true})
	ro := h.ROURI()
	if out := MustVirsh(t, ro, "net-dumpxml", "default"); !strings.Contains(out, "<name>default</name>") {
		t.Errorf("read-only net-dumpxml: %s", out)
	}
	MustVirsh(t, ro, "net-list", "--all")
	xmlPath := filepath.Join(h.Dir, "n1.xml")
	os.WriteFile(xmlPath, []byte(n1XML), 0o644)
	for _, args := range [][]string{
		{"net-define", xmlPath}, {"net-create", xmlPath}, {"net-destroy", "default"},
		{"net-undefine", "default"}, {"net-autostart", "--disable", "default"}, {"net-start", "default"},
		{"net-update", "default", "add", "ip-dhcp-host", "<host mac='52:54:00:00:00:01' ip='192.168.122.9'/>", "--config"},
	} {
		r := Virsh(t, ro, args...)
		if r.Err == nil || !strings.Contains(r.Stderr, "operation forbidden: read only access prevents") {
			t.Errorf("read-only virsh %s: %s", strings.Join(args, " "), r)
		}
	}
	if got := lines(MustVirsh(t, h.UnixURI(), "net-list", "--name")); strings.Join(got, ",") != "default" {
		t.Errorf("networks after the refused changes: %q", got)
	}
}

// TestNetworkGuestNICs: a test guest with NICs of type network (the
// default network), bridge (a host bridge made for the test) and
// ethernet starts; each tap is where libvirt puts it, the live XML names
// it, its counters are readable, and the taps go when the guest stops.
func TestNetworkGuestNICs(t *testing.T) {
	requireNetworkTools(t)
	h := StartHost(t, HostOptions{NetNS: true})
	uri := h.UnixURI()
	if r := nsIP(t, h, "link", "add", "gvbr0", "type", "bridge"); r.Err != nil {
		t.Fatalf("create a host bridge: %s", r)
	}
	serial := filepath.Join(h.Dir, "nic.log")
	x := GuestXML(t, GuestOptions{Name: "nic", Serial: serial})
	x = strings.Replace(x, "  <devices>\n", `  <devices>
    <interface type='network'><source network='default'/><model type='virtio'/></interface>
    <interface type='bridge'><source bridge='gvbr0'/><model type='e1000'/></interface>
    <interface type='ethernet'><target dev='gvtap0'/><model type='virtio'/></interface>
`, 1)
	path := filepath.Join(h.Dir, "nic.xml")
	os.WriteFile(path, []byte(x), 0o644)
	MustVirsh(t, uri, "define", path)
	inactive := MustVirsh(t, uri, "dumpxml", "--inactive", "nic")
	if strings.Contains(inactive, "vnet") || !strings.Contains(inactive, "<source network='default'/>") {
		t.Errorf("inactive XML:\n%s", inactive)
	}
	MustVirsh(t, uri, "start", "nic")
	t.Cleanup(func() { Virsh(t, uri, "destroy", "nic") })
	live := dumpLive(t, uri, "nic")
	_ = live
	liveXML := MustVirsh(t, uri, "dumpxml", "nic")
	for _, want := range []string{
		"<source network='default' bridge='virbr0'/>\n      <target dev='vnet0'/>",
		"<source bridge='gvbr0'/>\n      <target dev='vnet1'/>",
		"<target dev='gvtap0'/>",
	} {
		if !strings.Contains(liveXML, want) {
			t.Errorf("live XML lacks %q:\n%s", want, liveXML)
		}
	}
	if r := nsIP(t, h, "link", "show", "master", "virbr0"); r.Err != nil || !strings.Contains(r.Stdout, "vnet0:") {
		t.Errorf("vnet0 not on virbr0: %s", r)
	}
	if r := nsIP(t, h, "link", "show", "master", "gvbr0"); r.Err != nil || !strings.Contains(r.Stdout, "vnet1:") {
		t.Errorf("vnet1 not on gvbr0: %s", r)
	}
	if r := nsIP(t, h, "-d", "link", "show", "dev", "vnet0"); r.Err != nil || !strings.Contains(r.Stdout, "tun type tap") || !strings.Contains(r.Stdout, "link/ether fe:54:00:") {
		t.Errorf("vnet0 is not libvirt's tap: %s", r)
	}
	if r := nsIP(t, h, "link", "show", "dev", "gvtap0"); r.Err != nil || !strings.Contains(r.Stdout, "state UNKNOWN") && !strings.Contains(r.Stdout, ",UP") {
		t.Errorf("gvtap0: %s", r)
	}
	WaitTicks(t, serial, 1, 90*time.Second)
	st := MustVirsh(t, uri, "domifstat", "nic", "vnet0")
	if !strings.Contains(st, "vnet0 rx_bytes") || !strings.Contains(st, "vnet0 tx_drop") {
		t.Errorf("domifstat: %s", st)
	}
	stats := MustVirsh(t, uri, "domstats", "--interface", "nic")
	for _, want := range []string{"net.count=3", "net.0.name=vnet0", "net.1.name=vnet1", "net.2.name=gvtap0", "net.0.rx.bytes="} {
		if !strings.Contains(stats, want) {
			t.Errorf("domstats lacks %s:\n%s", want, stats)
		}
	}
	// A daemon restart leaves the guest's taps alone and finds them again.
	h.Restart()
	if st := MustVirsh(t, uri, "domifstat", "nic", "vnet1"); !strings.Contains(st, "vnet1 rx_bytes") {
		t.Errorf("domifstat after restart: %s", st)
	}
	if r := nsIP(t, h, "link", "show", "master", "virbr0"); r.Err != nil || !strings.Contains(r.Stdout, "vnet0:") {
		t.Errorf("vnet0 not on virbr0 after restart: %s", r)
	}
	// A NIC of a network that is not running cannot start.
	MustVirsh(t, uri, "destroy", "nic")
	for _, dev := range []string{"vnet0", "vnet1", "gvtap0"} {
		if r := nsIP(t, h, "link", "show", "dev", dev); r.Err == nil {
			t.Errorf("%s left after the guest stopped: %s", dev, r)
		}
	}
	MustVirsh(t, uri, "net-destroy", "default")
	r := Virsh(t, uri, "start", "nic")
	if r.Err == nil || !strings.Contains(r.Stderr, "Requested operation is not valid: network 'default' is not active") {
		t.Errorf("start with the network down: %s", r)
	}
}

// TestVirtInstallNetworkDefault: virt-install with all its defaults —
// NIC (no --network: it picks the libvirt network 'default', writing
// <interface type='network'><source network='default'/>), graphics, USB,
// channels, sound, rng — installs a guest that runs with its tap on
// virbr0. Only --virt-type qemu is given: this machine's /dev/kvm opens
// but cannot run a guest.
func TestVirtInstallNetworkDefault(t *testing.T) {
	requireNetworkTools(t)
	deps.Require(t, "virt-install")
	kernel, initrd := testGuest(t)
	h := StartHost(t, HostOptions{NetNS: true})
	uri := h.UnixURI()
	args := "console=ttyS0 quiet cryptomgr.notests pti=on tick_ms=200"
	r := run(t, 2*time.Minute, "virt-install", "--connect", uri,
		"--import", "--name", "vi-net", "--virt-type", "qemu", "--memory", "128", "--vcpus", "1",
		"--disk", "none", "--osinfo", "detect=on,require=off",
		"--boot", "kernel="+kernel+",initrd="+initrd+",kernel_args="+args,
		"--noautoconsole")
	if r.Err != nil {
		t.Fatalf("virt-install: %s", r)
	}
	t.Cleanup(func() { Virsh(t, uri, "destroy", "vi-net") })
	inactive := MustVirsh(t, uri, "dumpxml", "--inactive", "vi-net")
	if !strings.Contains(inactive, "<interface type='network'>") || !strings.Contains(inactive, "<source network='default'/>") {
		t.Fatalf("virt-install did not use the default network:\n%s", inactive)
	}
	liveXML := MustVirsh(t, uri, "dumpxml", "vi-net")
	if !strings.Contains(liveXML, "<source network='default' bridge='virbr0'/>") || !strings.Contains(liveXML, "<target dev='vnet0'/>") {
		t.Errorf("live interface:\n%s", liveXML)
	}
	if r := nsIP(t, h, "link", "show", "master", "virbr0"); r.Err != nil || !strings.Contains(r.Stdout, "vnet0:") {
		t.Errorf("vnet0 not on virbr0: %s", r)
	}
	live := dumpLive(t, uri, "vi-net")
	ptyTicks(t, live.Devices.Consoles[0].TTY, 2, 90*time.Second)
}

// TestNetworkEvents: python-libvirt's network lifecycle callback sees a
// network defined, started, stopped and undefined, in that order.
func TestNetworkEvents(t *testing.T) {
	requireNetworkTools(t)
	h := StartHost(t, HostOptions{NetNS: true})
	script := `
import sys, threading, time, libvirt
libvirt.virEventRegisterDefaultImpl()
def loop():
    while True:
        libvirt.virEventRunDefaultImpl()
threading.Thread(target=loop, daemon=True).start()
c = libvirt.open(sys.argv[1])
seen = []
def cb(conn, net, event, detail, opaque):
    seen.append("%s:%d:%d" % (net.name(), event, detail))
c.networkEventRegisterAny(None, libvirt.VIR_NETWORK_EVENT_ID_LIFECYCLE, cb, None)
n = c.networkDefineXML("<network><name>ev</name><ip address='10.97.0.1' prefix='24'/></network>")
n.create()
n.destroy()
n.undefine()
deadline = time.time() + 10
while len(seen) < 4 and time.time() < deadline:
    time.sleep(0.05)
print(" ".join(seen))
`
	r := Python(t, script, h.UnixURI())
	if r.Err != nil {
		t.Fatalf("python: %s", r)
	}
	// VIR_NETWORK_EVENT_DEFINED, STARTED, STOPPED, UNDEFINED.
	if got := strings.TrimSpace(r.Stdout); got != "ev:0:0 ev:2:0 ev:3:0 ev:1:0" {
		t.Errorf("events %q", got)
	}
}

// TestNetworkDHCPLease: a DHCP client gets the static lease net-update
// gave its MAC on the running default network, and virsh net-dhcp-leases
// and domifaddr show it.
// The test guest's kernel cannot configure itself by DHCP (no
// CONFIG_IP_PNP), so the client is busybox's udhcpc in a namespace of its
// own, on a veth plugged into virbr0, using the guest NIC's MAC address.
func TestNetworkDHCPLease(t *testing.T) {
	requireNetworkTools(t)
	deps.Require(t, "busybox")
	h := StartHost(t, HostOptions{NetNS: true})
	uri := h.UnixURI()
	const mac = "52:54:00:aa:bb:01"
	serial := filepath.Join(h.Dir, "lease.log")
	x := strings.Replace(GuestXML(t, GuestOptions{Name: "lease", Serial: serial}), "  <devices>\n",
		"  <devices>\n    <interface type='network'><mac address='"+mac+"'/><source network='default'/><model type='virtio'/></interface>\n", 1)
	path := filepath.Join(h.Dir, "lease.xml")
	os.WriteFile(path, []byte(x), 0o644)
	MustVirsh(t, uri, "define", path)
	MustVirsh(t, uri, "start", "lease")
	t.Cleanup(func() { Virsh(t, uri, "destroy", "lease") })

	client := makeNetNS(t, h.NetNS+"-c")
	for _, args := range [][]string{
		{"-n", h.NetNS, "link", "add", "gvc0", "type", "veth", "peer", "name", "gvc1", "netns", client},
		{"-n", h.NetNS, "link", "set", "dev", "gvc0", "master", "virbr0", "up"},
		{"-n", client, "link", "set", "dev", "gvc1", "address", mac, "up"},
	} {
		if r := run(t, 10*time.Second, "ip", args...); r.Err != nil {
			t.Fatalf("ip %s: %s", strings.Join(args, " "), r)
		}
	}
	// A static lease added to the running network (dnsmasq re-reads its
	// hosts file) and to its definition.
	MustVirsh(t, uri, "net-update", "default", "add", "ip-dhcp-host",
		"<host mac='"+mac+"' name='fixed' ip='192.168.122.77'/>", "--live", "--config")
	if x := MustVirsh(t, uri, "net-dumpxml", "--inactive", "default"); !strings.Contains(x, "<host mac='"+mac+"' name='fixed' ip='192.168.122.77'/>") {
		t.Errorf("net-update did not reach the definition:\n%s", x)
	}
	// The bridge forwards only after STP's listening and learning (2 s
	// each): udhcpc retries every second meanwhile.
	r := run(t, 40*time.Second, "ip", "netns", "exec", client, deps.Command(t, "busybox"), "udhcpc",
		"-i", "gvc1", "-f", "-q", "-n", "-t", "20", "-T", "1", "-s", "/bin/true", "-x", "hostname:cl1")
	if r.Err != nil {
		t.Fatalf("udhcpc: %s", r)
	}
	leases := MustVirsh(t, uri, "net-dhcp-leases", "default")
	fields := strings.Fields(strings.Join(lines(leases), " "))
	if !strings.Contains(leases, mac) || !strings.Contains(leases, "ipv4") || !strings.Contains(leases, "fixed") || !strings.Contains(leases, "192.168.122.") {
		t.Fatalf("net-dhcp-leases:\n%s", leases)
	}
	var addr string
	for _, f := range fields {
		if strings.HasPrefix(f, "192.168.122.") {
			addr = f
		}
	}
	if addr != "192.168.122.77/24" {
		t.Errorf("leased address %q, want the static lease 192.168.122.77/24", addr)
	}
	if only := MustVirsh(t, uri, "net-dhcp-leases", "default", "--mac", "52:54:00:00:00:99"); strings.Contains(only, mac) {
		t.Errorf("--mac filter: %s", only)
	}
	ifaddr := MustVirsh(t, uri, "domifaddr", "lease")
	if got := strings.Join(strings.Fields(ifaddr), " "); !strings.Contains(got, "vnet0 "+mac+" ipv4 "+addr) {
		t.Errorf("domifaddr:\n%s\nwant vnet0 %s ipv4 %s", ifaddr, mac, addr)
	}
	// The read-only socket may read leases (not the guest agent).
	if ro := MustVirsh(t, h.ROURI(), "domifaddr", "lease"); strings.Join(strings.Fields(ro), " ") != strings.Join(strings.Fields(ifaddr), " ") {
		t.Errorf("domifaddr on the read-only socket:\n%s", ro)
	}
	mustFail(t, h.ROURI(), "read only access prevents virDomainInterfaceAddresses", "domifaddr", "lease", "--source", "agent")
	t.Logf("net-dhcp-leases default:\n%s\ndomifaddr lease:\n%s", leases, ifaddr)
}

// TestNetworkGuestMigrates: a guest on the default network migrates live
// to a second host in the same namespace, whose 'default' network is the
// first host's bridge (forward mode 'bridge'); its NIC is plugged into
// that bridge on arrival and the guest keeps running.
func TestNetworkGuestMigrates(t *testing.T) {
	requireNetworkTools(t)
	a := StartHost(t, HostOptions{NetNS: true})
	b := StartHost(t, HostOptions{ShareNetNS: a})
	hb := filepath.Join(b.Dir, "default.xml")
	os.WriteFile(hb, []byte("<network><name>default</name><forward mode='bridge'/><bridge name='virbr0'/></network>"), 0o644)
	MustVirsh(t, b.UnixURI(), "net-define", hb)
	MustVirsh(t, b.UnixURI(), "net-start", "default")

	serial := filepath.Join(a.Dir, "mig.log")
	x := strings.Replace(GuestXML(t, GuestOptions{Name: "mig", Serial: serial}), "  <devices>\n",
		"  <devices>\n    <interface type='network'><mac address='52:54:00:aa:bb:02'/><source network='default'/><model type='virtio'/></interface>\n", 1)
	path := filepath.Join(a.Dir, "mig.xml")
	os.WriteFile(path, []byte(x), 0o644)
	MustVirsh(t, a.UnixURI(), "define", path)
	MustVirsh(t, a.UnixURI(), "start", "mig")
	t.Cleanup(func() {
		Virsh(t, a.UnixURI(), "destroy", "mig")
		Virsh(t, b.UnixURI(), "destroy", "mig")
	})
	before := WaitTicks(t, serial, 2, 90*time.Second)
	MustVirsh(t, a.UnixURI(), "migrate", "--live", "mig", b.UnixURI())
	liveXML := MustVirsh(t, b.UnixURI(), "dumpxml", "mig")
	if !strings.Contains(liveXML, "<source network='default' bridge='virbr0'/>") || !strings.Contains(liveXML, "<target dev='vnet") {
		t.Errorf("live interface on the destination:\n%s", liveXML)
	}
	after := WaitTicks(t, serial, before.N+2, 60*time.Second)
	if after.BootID != before.BootID || after.Mism != 0 {
		t.Errorf("guest after migration: %+v, before %+v", after, before)
	}
	r := nsIP(t, a, "link", "show", "master", "virbr0")
	if r.Err != nil || strings.Count(r.Stdout, "vnet") != 1 {
		t.Errorf("taps on virbr0 after migration (want the destination's only): %s", r)
	}
}
