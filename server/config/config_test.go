package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestDefault(t *testing.T) {
	c := Default()
	want := &Config{
		ListenTLS: true, TCPPort: "16509", TLSPort: "16514",
		UnixSockDir: "/var/run/libvirt", UnixSockRWPerms: 0o700, UnixSockROPerms: 0o777,
		AuthTCP: "sasl", AuthTLS: "none", AuthUnixRW: "none", AuthUnixRO: "none",
		MaxClients: 5000, MaxAnonymousClients: 20, MaxClientRequests: 5,
		MaxWorkers: 20, MinWorkers: 5, KeepaliveInterval: 5, KeepaliveCount: 5,
		LogLevel: 3, StateDir: "/var/lib/govirtd", NetworkDefault: true,
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Default() = %+v\nwant %+v", c, want)
	}
	// The defaults (TLS on, SASL on TCP) are libvirtd's and are only
	// refused when the daemon actually listens.
	if err := c.Validate(false); err != nil {
		t.Errorf("Default().Validate(false) = %v", err)
	}
	if _, err := os.Stat(DefaultCAFile); err != nil {
		if err := c.Validate(true); err == nil || !strings.Contains(err.Error(), "listen_tls = 1: cannot read CA certificate '"+DefaultCAFile+"'") {
			t.Errorf("Default().Validate(true) = %v, want the missing CA certificate", err)
		}
	}
	// Parsing an empty file gives the defaults.
	p, warns, err := Parse(nil, "empty.conf")
	if err != nil || len(warns) != 0 || !reflect.DeepEqual(p, want) {
		t.Errorf("Parse(empty) = %+v, %v, %v", p, warns, err)
	}
}

const hostB = `# govirtd configuration for the second host of the two-host setup
network_default = 0
listen_tls = 0
listen_tcp = 1
tcp_port = "16509"
listen_addr = "127.0.0.3"
auth_tcp = "none"
host_uuid = "11111111-2222-3333-4444-555555555555"
unix_sock_dir = "/tmp/hostb/run"
unix_sock_rw_perms = "0770"
unix_sock_ro_perms = "0777"
unix_sock_group = "libvirt"
state_dir = "/tmp/hostb/state"
hostname = "hostb"
qemu_config = "/tmp/hostb/qemu.conf"
log_rpc_calls = 1
max_clients = 100
max_anonymous_clients = 10
max_client_requests = 10
max_workers = 8
min_workers = 2
keepalive_interval = -1
keepalive_count = 0
log_level = 1
key_file = "/etc/pki/libvirt/private/serverkey.pem"
cert_file = "/etc/pki/libvirt/servercert.pem"
ca_file = "/etc/pki/CA/cacert.pem"
crl_file = "/etc/pki/CA/crl.pem"
tls_no_verify_certificate = 1
tls_allowed_dn_list = [
    "C=GB,ST=London,L=London,O=Red Hat,CN=*",   # any Red Hat host
    "DC=org,DC=example,CN=hosta",
]
`

func TestParseFull(t *testing.T) {
	c, warns, err := Parse([]byte(hostB), "hostb.conf")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if len(warns) != 0 {
		t.Errorf("unexpected warnings: %q", warns)
	}
	want := &Config{
		ListenTCP: true, ListenTLS: false, TCPPort: "16509", TLSPort: "16514",
		ListenAddr: "127.0.0.3", UnixSockDir: "/tmp/hostb/run",
		UnixSockRWPerms: 0o770, UnixSockROPerms: 0o777, UnixSockGroup: "libvirt",
		AuthTCP: "none", AuthTLS: "none", AuthUnixRW: "none", AuthUnixRO: "none",
		HostUUID:   "11111111-2222-3333-4444-555555555555",
		MaxClients: 100, MaxAnonymousClients: 10, MaxClientRequests: 10,
		MaxWorkers: 8, MinWorkers: 2, KeepaliveInterval: -1, KeepaliveCount: 0,
		LogLevel: 1,
		KeyFile:  "/etc/pki/libvirt/private/serverkey.pem", CertFile: "/etc/pki/libvirt/servercert.pem",
		CAFile: "/etc/pki/CA/cacert.pem", CRLFile: "/etc/pki/CA/crl.pem",
		TLSNoVerifyCertificate: true,
		TLSAllowedDNList:       []string{"C=GB,ST=London,L=London,O=Red Hat,CN=*", "DC=org,DC=example,CN=hosta"},
		StateDir:               "/tmp/hostb/state", Hostname: "hostb", QemuConfig: "/tmp/hostb/qemu.conf",
		LogRPCCalls: true,
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got  %+v\nwant %+v", c, want)
	}
	if err := c.Validate(true); err != nil {
		t.Errorf("Validate(true) = %v", err)
	}
	if h, err := c.EffectiveHostname(); err != nil || h != "hostb" {
		t.Errorf("EffectiveHostname() = %q, %v", h, err)
	}
}

func TestLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "libvirtd.conf")
	if err := os.WriteFile(path, []byte(hostB), 0o600); err != nil {
		t.Fatal(err)
	}
	c, _, err := Load(path)
	if err != nil || c.Hostname != "hostb" {
		t.Fatalf("Load = %+v, %v", c, err)
	}
	if _, _, err := Load(filepath.Join(t.TempDir(), "missing.conf")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) error = %v, want a wrapped not-exist error", err)
	}
}

func TestPortsAsIntegers(t *testing.T) {
	c, _, err := Parse([]byte("tcp_port = 1234\ntls_port = '4321'"), "x.conf")
	if err != nil || c.TCPPort != "1234" || c.TLSPort != "4321" {
		t.Errorf("got %q %q %v", c.TCPPort, c.TLSPort, err)
	}
}

func TestLogLevelZeroMeansDefault(t *testing.T) {
	c, _, err := Parse([]byte("log_level = 0"), "x.conf")
	if err != nil || c.LogLevel != 3 {
		t.Errorf("log_level = 0 gave %d, %v; want the default 3", c.LogLevel, err)
	}
}

func TestWarnings(t *testing.T) {
	in := `listen_tcp = 0
mdns_adv = 0
log_outputs = "1:file:/var/log/libvirt/libvirtd.log"
admin_max_workers = 5
sasl_allowed_username_list = ["joe@EXAMPLE.COM"]
foo = "bar"
max_clients = 10
max_clients = 20
`
	c, warns, err := Parse([]byte(in), "libvirtd.conf")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"libvirtd.conf line 2: mdns_adv is accepted but not used by govirtd",
		"libvirtd.conf line 3: log_outputs is accepted but not used by govirtd",
		"libvirtd.conf line 4: admin_max_workers is accepted but not used by govirtd",
		"libvirtd.conf line 5: sasl_allowed_username_list is accepted but not used by govirtd",
		`libvirtd.conf line 6: unknown key "foo" ignored`,
		"libvirtd.conf line 8: max_clients is also set on line 7; the first value is used, as libvirtd does",
	}
	if !reflect.DeepEqual(warns, want) {
		t.Errorf("warnings:\n got %q\nwant %q", warns, want)
	}
	if c.MaxClients != 10 {
		t.Errorf("MaxClients = %d, want the first value 10", c.MaxClients)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a = 1\n\nlisten_tcp = \"1\"", `libvirtd.conf line 3: listen_tcp: expected 0 or 1, got a string`},
		{"listen_tcp = 2", `libvirtd.conf line 1: listen_tcp: expected 0 or 1, got 2`},
		{"max_clients = \"10\"", `libvirtd.conf line 1: max_clients: expected an integer, got a string`},
		{"max_clients = -1", `libvirtd.conf line 1: max_clients: must not be negative, got -1`},
		{"max_clients = 99999999999", `libvirtd.conf line 1: max_clients: value 99999999999 is out of range`},
		{"keepalive_interval = [1]", `libvirtd.conf line 1: keepalive_interval: expected an integer, got a list`},
		{"unix_sock_dir = 5", `libvirtd.conf line 1: unix_sock_dir: expected a string, got an integer`},
		{"tcp_port = [\"1\"]", `libvirtd.conf line 1: tcp_port: expected a string, got a list`},
		{"unix_sock_rw_perms = 0700", `libvirtd.conf line 1: unix_sock_rw_perms: expected an octal string such as "0770", got an integer (quote the value)`},
		{"unix_sock_rw_perms = \"0800\"", `libvirtd.conf line 1: unix_sock_rw_perms: invalid permissions "0800"`},
		{"unix_sock_ro_perms = \"01777\"", `libvirtd.conf line 1: unix_sock_ro_perms: invalid permissions "01777"`},
		{"auth_tcp = \"sals\"", `libvirtd.conf line 1: auth_tcp: unknown authentication scheme "sals"`},
		{"tls_allowed_dn_list = \"CN=x\"", `libvirtd.conf line 1: tls_allowed_dn_list: expected a list, got a string`},
		{"tls_allowed_dn_list = [\"a\", 2]", `libvirtd.conf line 1: tls_allowed_dn_list: list item 2: expected a string, got an integer`},
		{"log_level = 5", `libvirtd.conf line 1: log_level: expected 1 (debug), 2 (info), 3 (warning) or 4 (error), got 5`},
		{"log_rpc_calls = 'yes'", `libvirtd.conf line 1: log_rpc_calls: expected 0 or 1, got a string`},
		{"listen_tcp = yes", `libvirtd.conf line 1, column 14: unquoted value "yes"`},
		{"\nlisten_tcp 1", `libvirtd.conf line 2, column 12: expected '=' after key "listen_tcp"`},
	}
	for _, tt := range tests {
		c, _, err := Parse([]byte(tt.in), "libvirtd.conf")
		if err == nil {
			t.Errorf("Parse(%q) = %+v, want error %q", tt.in, c, tt.want)
			continue
		}
		if !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("Parse(%q) error\n got %q\nwant %q...", tt.in, err, tt.want)
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
		listen bool
		want   []string // substrings; empty means valid
	}{
		{"tcp without listen ignores auth_tcp", func(c *Config) { c.ListenTCP, c.ListenTLS = true, false }, false, nil},
		{"tcp with sasl", func(c *Config) { c.ListenTCP, c.ListenTLS = true, false }, true,
			[]string{`auth_tcp = "sasl": only "none" is implemented by govirtd`}},
		{"tcp with none", func(c *Config) { c.ListenTCP, c.ListenTLS, c.AuthTCP = true, false, "none" }, true, nil},
		{"tls without its files", func(c *Config) {
			c.CAFile, c.CertFile, c.KeyFile, c.CRLFile = "/nonexistent/ca.pem", "/nonexistent/cert.pem", "/nonexistent/key.pem", "/nonexistent/crl.pem"
		}, true, []string{
			"listen_tls = 1: cannot read CA certificate '/nonexistent/ca.pem' (ca_file): no such file or directory",
			"cannot read server certificate '/nonexistent/cert.pem' (cert_file)",
			"cannot read server private key '/nonexistent/key.pem' (key_file)",
			"cannot read CA revocation list '/nonexistent/crl.pem' (crl_file)"}},
		{"tls with its files", func(c *Config) { c.CAFile, c.CertFile, c.KeyFile = os.Args[0], os.Args[0], os.Args[0] }, true, nil},
		{"tls with sasl", func(c *Config) {
			c.CAFile, c.CertFile, c.KeyFile, c.AuthTLS = os.Args[0], os.Args[0], os.Args[0], "sasl"
		}, true,
			[]string{`auth_tls = "sasl": only "none" is implemented by govirtd`}},
		{"unix polkit", func(c *Config) { c.AuthUnixRW = "polkit" }, false, []string{`auth_unix_rw = "polkit": only "none"`}},
		{"unix ro sasl", func(c *Config) { c.AuthUnixRO = "sasl" }, false, []string{`auth_unix_ro = "sasl"`}},
		{"bad ports", func(c *Config) { c.TCPPort, c.TLSPort = "0", "libvirt" }, false,
			[]string{`tcp_port = "0": expected a port number between 1 and 65535`, `tls_port = "libvirt"`}},
		{"port too big", func(c *Config) { c.TCPPort = "65536" }, false, []string{`tcp_port = "65536"`}},
		{"max port", func(c *Config) { c.TCPPort = "65535" }, false, nil},
		{"negative keepalive_count", func(c *Config) { c.KeepaliveCount = -1 }, false, []string{"keepalive_count = -1"}},
		{"zero max_client_requests", func(c *Config) { c.MaxClientRequests = 0 }, false, []string{"max_client_requests = 0: must be at least 1"}},
		{"zero max_workers", func(c *Config) { c.MaxWorkers, c.MinWorkers = 0, 0 }, false, []string{"max_workers = 0"}},
		{"min above max workers", func(c *Config) { c.MinWorkers = 50 }, false, []string{"min_workers = 50"}},
		{"bad log level", func(c *Config) { c.LogLevel = 0 }, false, []string{"log_level = 0"}},
		{"bad perms", func(c *Config) { c.UnixSockRWPerms = 0o1777 }, false, []string{"unix_sock_rw_perms = 01777"}},
		{"empty dirs", func(c *Config) { c.UnixSockDir, c.StateDir = "", "" }, false, []string{"unix_sock_dir must not be empty", "state_dir must not be empty"}},
		{"valid uuid", func(c *Config) { c.HostUUID = "11111111-2222-3333-4444-555555555555" }, false, nil},
		{"uuid without dashes", func(c *Config) { c.HostUUID = "0123456789abcdef0123456789ABCDEF" }, false, nil},
		{"bad uuid", func(c *Config) { c.HostUUID = "not-a-uuid" }, false, []string{`host_uuid = "not-a-uuid": invalid UUID`}},
		{"short uuid", func(c *Config) { c.HostUUID = "11111111-2222-3333-4444" }, false, []string{"expected 32 hexadecimal digits"}},
		{"long uuid", func(c *Config) { c.HostUUID = "11111111-2222-3333-4444-55555555555566" }, false, []string{"unexpected characters"}},
		{"all-zero uuid", func(c *Config) { c.HostUUID = "00000000-0000-0000-0000-000000000000" }, false, []string{"all bytes are the same"}},
		{"all-f uuid", func(c *Config) { c.HostUUID = "ffffffff-ffff-ffff-ffff-ffffffffffff" }, false, []string{"all bytes are the same"}},
		{"several problems at once", func(c *Config) { c.MaxClientRequests, c.KeepaliveCount = 0, -2 }, false,
			[]string{"max_client_requests = 0", "keepalive_count = -2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.modify(c)
			err := c.Validate(tt.listen)
			if len(tt.want) == 0 {
				if err != nil {
					t.Errorf("Validate(%v) = %v, want nil", tt.listen, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate(%v) = nil, want %q", tt.listen, tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate(%v) = %q, want it to contain %q", tt.listen, err, w)
				}
			}
		})
	}
}

func TestParseHostUUID(t *testing.T) {
	u, err := ParseHostUUID(" 11111111-2222-3333-4444-555555555555 ")
	want := [16]byte{0x11, 0x11, 0x11, 0x11, 0x22, 0x22, 0x33, 0x33, 0x44, 0x44, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55}
	if err != nil || u != want {
		t.Errorf("ParseHostUUID = %x, %v", u, err)
	}
	for _, bad := range []string{"", "+1111111-2222-3333-4444-555555555555", "g1111111-2222-3333-4444-555555555555"} {
		if _, err := ParseHostUUID(bad); err == nil {
			t.Errorf("ParseHostUUID(%q) succeeded", bad)
		}
	}
}

func TestEffectiveHostnameFallsBackToOS(t *testing.T) {
	osName, err := os.Hostname()
	if err != nil {
		t.Skipf("no OS hostname: %v", err)
	}
	if h, err := Default().EffectiveHostname(); err != nil || h != osName {
		t.Errorf("EffectiveHostname() = %q, %v; want %q", h, err, osName)
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(hostB))
	f.Add([]byte(""))
	f.Add([]byte("listen_tcp = 1\nauth_tcp = \"none\"\nfoo = 1\nfoo = 2\n"))
	f.Add([]byte("tls_allowed_dn_list = [\"a\", [\"b\"]]"))
	f.Add([]byte("unix_sock_rw_perms = \"0770\"\nhost_uuid = \"00000000-0000-0000-0000-000000000000\""))
	f.Add([]byte("log_level = 9\nmax_clients = -5"))
	f.Add([]byte("tcp_port = 99999999999999999999"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, warns, err := Parse(data, "fuzz.conf")
		if err != nil {
			if c != nil || warns != nil {
				t.Fatalf("error %v returned with a config", err)
			}
			if !strings.HasPrefix(err.Error(), "fuzz.conf line ") {
				t.Fatalf("error %q does not name the file and line", err)
			}
			return
		}
		for _, w := range warns {
			if !strings.HasPrefix(w, "fuzz.conf line ") {
				t.Fatalf("warning %q does not name the file and line", w)
			}
		}
		// Validate must never panic whatever was parsed.
		_ = c.Validate(true)
		_ = c.Validate(false)
	})
}
