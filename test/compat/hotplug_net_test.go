package compat_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// domiflistMAC is the MAC address domiflist shows for the NIC of the
// given type, "" if none.
func domiflistMAC(t *testing.T, uri, name, typ string) string {
	t.Helper()
	for _, l := range lines(MustVirsh(t, uri, "domiflist", name)) {
		if f := strings.Fields(l); len(f) == 5 && f[1] == typ {
			return f[4]
		}
	}
	return ""
}

// TestHotplugInterface: NICs of type network (a tap on the default
// network's bridge, passed to QEMU over the monitor) and user plugged
// into a running guest show in domiflist, the live XML (aliases net0,
// net1; libvirt's 52:54:00 MAC addresses) and QEMU; the network one also
// in the persistent definition. Unplugged, they and the tap are gone.
func TestHotplugInterface(t *testing.T) {
	requireNetworkTools(t)
	h := StartHost(t, HostOptions{NetNS: true})
	uri := h.UnixURI()
	hotplugGuest(t, h, uri, "hpn", 0, nil)

	MustVirsh(t, uri, "attach-interface", "hpn", "network", "default", "--model", "virtio", "--live", "--config")
	mac := domiflistMAC(t, uri, "hpn", "network")
	if !strings.HasPrefix(mac, "52:54:00:") {
		t.Fatalf("domiflist after attach-interface network:\n%s", MustVirsh(t, uri, "domiflist", "hpn"))
	}
	live := MustVirsh(t, uri, "dumpxml", "hpn")
	for _, want := range []string{"<mac address='" + mac + "'/>", "<source network='default' bridge='virbr0'/>", "<target dev='vnet0'/>", "<model type='virtio'/>", "<alias name='net0'/>"} {
		if !strings.Contains(live, want) {
			t.Errorf("live XML lacks %q:\n%s", want, live)
		}
	}
	if inactive := MustVirsh(t, uri, "dumpxml", "--inactive", "hpn"); !strings.Contains(inactive, "<mac address='"+mac+"'/>") || strings.Contains(inactive, "vnet0") {
		t.Errorf("inactive XML after attach-interface --config:\n%s", inactive)
	}
	if r := nsIP(t, h, "link", "show", "dev", "vnet0"); r.Err != nil || !strings.Contains(r.Stdout, "master virbr0") {
		t.Errorf("vnet0 in the namespace: %s", r)
	}

	userXML := filepath.Join(h.Dir, "user.xml")
	os.WriteFile(userXML, []byte("<interface type='user'/>"), 0o644)
	MustVirsh(t, uri, "attach-device", "hpn", userXML, "--live")
	umac := domiflistMAC(t, uri, "hpn", "user")
	if !strings.HasPrefix(umac, "52:54:00:") || umac == mac {
		t.Errorf("domiflist after attach-interface user:\n%s", MustVirsh(t, uri, "domiflist", "hpn"))
	}
	if live := MustVirsh(t, uri, "dumpxml", "hpn"); !strings.Contains(live, "<alias name='net1'/>") || !strings.Contains(live, "<model type='rtl8139'/>") {
		t.Errorf("live XML after attach-interface user:\n%s", live)
	}
	netinfo := MustVirsh(t, uri, "qemu-monitor-command", "--hmp", "hpn", "info network")
	for _, want := range []string{"net0: index=0,type=nic,model=virtio-net-pci,macaddr=" + mac, "hostnet0: index=0,type=tap,fd=", "net1: index=0,type=nic,model=rtl8139,macaddr=" + umac, "hostnet1: index=0,type=user"} {
		if !strings.Contains(netinfo, want) {
			t.Errorf("info network lacks %q:\n%s", want, netinfo)
		}
	}
	if stats := MustVirsh(t, uri, "domifstat", "hpn", "vnet0"); !strings.Contains(stats, "vnet0 rx_bytes") {
		t.Errorf("domifstat vnet0:\n%s", stats)
	}

	MustVirsh(t, uri, "detach-interface", "hpn", "network", "--mac", mac, "--live", "--config")
	MustVirsh(t, uri, "detach-interface", "hpn", "user", "--mac", umac, "--live")
	waitFor(t, 30*time.Second, "both NICs gone", func() (bool, string) {
		out := MustVirsh(t, uri, "domiflist", "hpn")
		return !strings.Contains(out, mac) && !strings.Contains(out, umac), out
	})
	if inactive := MustVirsh(t, uri, "dumpxml", "--inactive", "hpn"); strings.Contains(inactive, "<interface") {
		t.Errorf("inactive XML after detach-interface --config:\n%s", inactive)
	}
	if netinfo := MustVirsh(t, uri, "qemu-monitor-command", "--hmp", "hpn", "info network"); strings.Contains(netinfo, "hostnet") {
		t.Errorf("info network after the detaches:\n%s", netinfo)
	}
	waitFor(t, 10*time.Second, "vnet0 removed", func() (bool, string) {
		r := nsIP(t, h, "link", "show", "dev", "vnet0")
		return r.Err != nil, r.String()
	})
	nicXML := filepath.Join(h.Dir, "nic.xml")
	os.WriteFile(nicXML, []byte("<interface type='network'><mac address='"+mac+"'/><source network='default'/></interface>"), 0o644)
	wantVirshError(t, uri, "device not found: no device matching MAC address "+mac+" found", "detach-device", "hpn", nicXML, "--config")
	wantVirshError(t, uri, "device not found: no device matching MAC address "+mac+" found", "detach-device", "hpn", nicXML, "--live")
	MustVirsh(t, uri, "destroy", "hpn")
}
