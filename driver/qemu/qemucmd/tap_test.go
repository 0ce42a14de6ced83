package qemucmd

import (
	"slices"
	"testing"

	"libvirt.org/go/libvirtxml"
)

// TestTapNetdev: NICs of type network, bridge and ethernet get the tap
// netdev libvirt 9.0 passes by descriptor under TCG, as captured from a
// real libvirtd (-netdev '{"type":"tap","fd":"31","id":"hostnet0"}', the
// device line as for user NICs).
func TestTapNetdev(t *testing.T) {
	for name, src := range map[string]libvirtxml.DomainInterfaceSource{
		"network":  {Network: &libvirtxml.DomainInterfaceSourceNetwork{Network: "default", Bridge: "virbr0"}},
		"bridge":   {Bridge: &libvirtxml.DomainInterfaceSourceBridge{Bridge: "br0"}},
		"ethernet": {Ethernet: &libvirtxml.DomainInterfaceSourceEthernet{}},
	} {
		t.Run(name, func(t *testing.T) {
			dom := loadDomain(t, "net-user")
			n := &dom.Devices.Interfaces[0]
			n.Source = &src
			n.Target = &libvirtxml.DomainInterfaceTarget{Dev: "vnet0"}
			cmd, err := Build(dom, suiteOptions("QEMUGuest1"))
			if err != nil {
				t.Fatal(err)
			}
			if want := []PassedTap{{FD: 1750, Alias: "net0"}}; !slices.Equal(cmd.Taps, want) {
				t.Errorf("Taps = %+v, want %+v", cmd.Taps, want)
			}
			i := slices.Index(cmd.Args, `{"type":"tap","fd":"1750","id":"hostnet0"}`)
			if i < 1 || cmd.Args[i-1] != "-netdev" {
				t.Fatalf("no tap netdev in %q", cmd.Args)
			}
			if cmd.Args[i+2] != `{"driver":"rtl8139","netdev":"hostnet0","id":"net0","mac":"00:11:22:33:44:55","bus":"pci.0","addr":"0x2"}` {
				t.Errorf("device after the netdev: %s", cmd.Args[i+2])
			}
		})
	}
}
