package qemu

import (
	"testing"

	"github.com/govirtd/govirtd/compat/migparams"
)

func TestTCPMigrationAddr(t *testing.T) {
	for _, c := range []struct {
		uri, addr string
		ok        bool
	}{
		{"tcp:127.0.0.3:49152", "127.0.0.3:49152", true},
		{"tcp://127.0.0.3:49152", "127.0.0.3:49152", true},
		{"tcp://127.0.0.3:49152/", "127.0.0.3:49152", true},
		{"tcp:[::1]:49152", "[::1]:49152", true},
		{"tcp://[::1]:49152", "[::1]:49152", true},
		{"unix:/run/mig.sock", "", false},
		{"fd:migrate", "", false},
	} {
		addr, ok := tcpMigrationAddr(c.uri)
		if addr != c.addr || ok != c.ok {
			t.Errorf("tcpMigrationAddr(%q) = %q, %v; want %q, %v", c.uri, addr, ok, c.addr, c.ok)
		}
	}
}

// prepareURIOut is libvirt 9.0's uri_out: nothing when the client's URI
// names a port (the source goes where the client said), the client's URI
// with the chosen port when it does not, in the client's own form.
func TestPrepareURIOut(t *testing.T) {
	d := &Driver{}
	for _, c := range []struct {
		in, out string
		err     bool
	}{
		{"tcp://127.0.0.9:49300", "", false},
		{"tcp:127.0.0.9:49300", "", false},
		{"tcp://127.0.0.9", "tcp://127.0.0.9:49152", false},
		{"tcp://127.0.0.9/", "tcp://127.0.0.9:49152", false},
		{"tcp:127.0.0.9", "tcp:127.0.0.9:49152", false},
		{"tcp://[::1]", "tcp://[::1]:49152", false},
		{"tcp://127.0.0.9:0x10", "", true},
		{"unix:/run/x", "", true},
	} {
		out, err := d.prepareURIOut(&migparams.Params{URI: c.in}, 49152)
		if out != c.out || (err != nil) != c.err {
			t.Errorf("prepareURIOut(%q) = %q, %v; want %q (error %v)", c.in, out, err, c.out, c.err)
		}
	}
}
