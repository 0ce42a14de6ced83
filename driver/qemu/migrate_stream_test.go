package qemu

import "testing"

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
