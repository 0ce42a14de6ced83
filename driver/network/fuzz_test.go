package network

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse: network XML from a client must never panic the daemon; what
// parse accepts must format and parse again.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"n1.in.xml", "n1.inactive.xml", "n1.live.xml"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add(defaultNetworkXML)
	f.Add("<network><name>x</name><forward mode='bridge'/><bridge name='br0'/></network>")
	f.Add("<network><name>x</name><ip address='10.0.0.1' prefix='8'><dhcp><host name='a'/></dhcp></ip></network>")
	f.Fuzz(func(t *testing.T, doc string) {
		def, err := parse(doc)
		if err != nil {
			return
		}
		if err := fillDefaults(def, func(string) (string, error) { return "virbr0", nil }); err != nil {
			return
		}
		live, err := liveDef(def)
		if err != nil {
			t.Fatalf("live copy of an accepted definition: %v", err)
		}
		x, err := format(live)
		if err != nil {
			t.Fatalf("format of an accepted definition: %v", err)
		}
		if _, err := parse(x); err != nil {
			t.Fatalf("formatted definition does not parse again: %v\n%s", err, x)
		}
		_ = dnsmasqConf(live, dnsmasqPaths{})
		_ = firewallRules(live)
	})
}
