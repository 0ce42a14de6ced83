// Package config loads govirtd's daemon configuration, which uses the same
// file format and key names as libvirtd.conf so that an existing libvirtd
// configuration can be reused unchanged.
//
// Keys are interpreted with libvirtd's semantics and defaults. Keys govirtd
// does not know produce warnings rather than errors, because libvirt grows
// new keys over time and a newer libvirtd.conf must still load.
package config

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/compat/virconf"
)

// Config is the daemon configuration.
type Config struct {
	// ListenTCP and ListenTLS enable the TCP and TLS listeners. As in
	// libvirtd they only take effect when the daemon runs with --listen.
	ListenTCP, ListenTLS bool
	// TCPPort and TLSPort are kept as strings because libvirt passes them
	// to getaddrinfo as service names.
	TCPPort, TLSPort string
	// ListenAddr is the address to listen on; "" means all addresses.
	ListenAddr string

	UnixSockDir                      string
	UnixSockRWPerms, UnixSockROPerms os.FileMode
	UnixSockGroup                    string

	// Authentication schemes per transport: "none", "sasl" or "polkit".
	// Only "none" is implemented; see Validate.
	AuthTCP, AuthTLS, AuthUnixRW, AuthUnixRO string

	// HostUUID overrides the host UUID reported to clients; "" means
	// derive it from the host.
	HostUUID string

	MaxClients          int
	MaxAnonymousClients int
	MaxClientRequests   int
	// MaxWorkers and MinWorkers are accepted for compatibility; govirtd
	// serves requests on goroutines rather than a fixed worker pool.
	MaxWorkers, MinWorkers int
	// KeepaliveInterval is in seconds; -1 disables keepalive.
	KeepaliveInterval int
	KeepaliveCount    int
	// LogLevel uses libvirtd's scale: 1 debug, 2 info, 3 warning, 4 error.
	LogLevel int

	// TLS material, stored for the TLS listener.
	KeyFile, CertFile, CAFile, CRLFile string
	TLSNoVerifyCertificate             bool
	TLSAllowedDNList                   []string

	// govirtd's own keys.

	// StateDir holds govirtd's persistent state.
	StateDir string
	// Hostname overrides the name reported to clients; "" means the OS
	// hostname (see EffectiveHostname).
	Hostname string
	// QemuConfig is the path of a qemu.conf-syntax file; "" means none.
	QemuConfig string
	// LogRPCCalls logs every RPC call with its procedure name.
	LogRPCCalls bool
	// FaultInjection lists "<step>:<action>" faults for migration steps
	// (see driver/qemu/faults.go), for people testing their clients'
	// error paths.
	FaultInjection []string
	// DebugPprofAddr, when set, serves Go's profiling endpoints
	// (/debug/pprof/) on this loopback address, for soak tests and
	// performance work.
	DebugPprofAddr string
	// NetworkDefault defines libvirt's 'default' network (NAT on
	// 192.168.122.0/24, bridge virbr0, autostarted) the first time the
	// daemon starts on a state_dir, as Debian's libvirt package does.
	// Set it to 0 on a machine where that network must not appear.
	NetworkDefault bool
}

// Default returns the configuration used when no file is given, with
// libvirtd's defaults.
func Default() *Config {
	return &Config{
		ListenTCP:           false,
		ListenTLS:           true,
		TCPPort:             "16509",
		TLSPort:             "16514",
		UnixSockDir:         "/var/run/libvirt",
		UnixSockRWPerms:     0o700,
		UnixSockROPerms:     0o777,
		AuthTCP:             "sasl",
		AuthTLS:             "none",
		AuthUnixRW:          "none",
		AuthUnixRO:          "none",
		MaxClients:          5000,
		MaxAnonymousClients: 20,
		MaxClientRequests:   5,
		MaxWorkers:          20,
		MinWorkers:          5,
		KeepaliveInterval:   5,
		KeepaliveCount:      5,
		LogLevel:            3,
		StateDir:            "/var/lib/govirtd",
		NetworkDefault:      true,
	}
}

// libvirt's system PKI layout (virnettlsconfig.c: LIBVIRT_CACERT_DIR,
// LIBVIRT_CERT_DIR, LIBVIRT_KEY_DIR), used when ca_file, cert_file,
// key_file and crl_file are not set.
const (
	DefaultCAFile   = "/etc/pki/CA/cacert.pem"
	DefaultCRLFile  = "/etc/pki/CA/cacrl.pem"
	DefaultCertFile = "/etc/pki/libvirt/servercert.pem"
	DefaultKeyFile  = "/etc/pki/libvirt/private/serverkey.pem"
)

// TLSFiles returns the TLS listener's CA certificate, revocation list,
// server certificate and key: the configured files, else libvirt's
// defaults. crl is "" when crl_file is unset and the default CRL does not
// exist: libvirtd only uses a revocation list that is there.
func (c *Config) TLSFiles() (ca, crl, cert, key string) {
	pick := func(v, def string) string {
		if v != "" {
			return v
		}
		return def
	}
	ca = pick(c.CAFile, DefaultCAFile)
	cert = pick(c.CertFile, DefaultCertFile)
	key = pick(c.KeyFile, DefaultKeyFile)
	crl = c.CRLFile
	if crl == "" {
		if _, err := os.Stat(DefaultCRLFile); err == nil {
			crl = DefaultCRLFile
		}
	}
	return ca, crl, cert, key
}

// maxFileSize mirrors libvirt's sanity limit on configuration files.
const maxFileSize = 10 << 20

// Load reads and parses the configuration file at path. Warnings describe
// keys that were ignored; they do not prevent the daemon from starting.
func Load(path string) (*Config, []string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("reading daemon configuration: %w", err)
	}
	if len(data) > maxFileSize {
		return nil, nil, fmt.Errorf("daemon configuration %s is larger than %d bytes", path, maxFileSize)
	}
	return Parse(data, path)
}

// Parse parses configuration file contents on top of the defaults. name is
// used in messages (usually the file path). It does not call Validate,
// because what is valid depends on how the daemon is started.
func Parse(data []byte, name string) (*Config, []string, error) {
	f, err := virconf.Parse(data)
	if err != nil {
		// err reads "line N, column M: ...".
		return nil, nil, fmt.Errorf("%s %w", name, err)
	}
	c := Default()
	var warnings []string
	firstLine := map[string]int{}
	for _, e := range f.Entries {
		if prev, dup := firstLine[e.Key]; dup {
			// libvirtd reads the first occurrence of a key and ignores the
			// rest; do the same, and say so, since an override appended to
			// the end of a file silently not taking effect surprises people.
			warnings = append(warnings, fmt.Sprintf("%s line %d: %s is also set on line %d; the first value is used, as libvirtd does", name, e.Line, e.Key, prev))
			continue
		}
		firstLine[e.Key] = e.Line

		k, known := keys[e.Key]
		switch {
		case !known:
			warnings = append(warnings, fmt.Sprintf("%s line %d: unknown key %q ignored", name, e.Line, e.Key))
		case k.apply == nil:
			warnings = append(warnings, fmt.Sprintf("%s line %d: %s is accepted but not used by govirtd", name, e.Line, e.Key))
		default:
			if err := k.apply(c, e.Value); err != nil {
				return nil, nil, fmt.Errorf("%s line %d: %s: %w", name, e.Line, e.Key, err)
			}
		}
	}
	return c, warnings, nil
}

// key describes how one configuration key is applied. A nil apply marks a
// libvirtd key that govirtd accepts but ignores.
type key struct {
	apply func(c *Config, v virconf.Value) error
}

// ignored lists libvirtd keys govirtd recognises but has no use for.
var ignored = []string{
	"access_drivers",
	"admin_keepalive_count", "admin_keepalive_interval",
	"admin_max_client_requests", "admin_max_clients",
	"admin_max_queued_clients", "admin_max_workers", "admin_min_workers",
	"audit_level", "audit_logging",
	"host_uuid_source",
	"keepalive_required", "admin_keepalive_required",
	"log_filters", "log_outputs",
	"max_queued_clients",
	"mdns_adv", "mdns_name",
	"ovs_timeout",
	"prio_workers",
	"sasl_allowed_username_list",
	"tcp_min_ssf",
	"tls_no_sanity_certificate",
	"tls_priority",
	"unix_sock_admin_perms",
}

var keys = func() map[string]key {
	m := map[string]key{
		"listen_tcp":  boolKey(func(c *Config) *bool { return &c.ListenTCP }),
		"listen_tls":  boolKey(func(c *Config) *bool { return &c.ListenTLS }),
		"tcp_port":    portKey(func(c *Config) *string { return &c.TCPPort }),
		"tls_port":    portKey(func(c *Config) *string { return &c.TLSPort }),
		"listen_addr": stringKey(func(c *Config) *string { return &c.ListenAddr }),

		"unix_sock_dir":      stringKey(func(c *Config) *string { return &c.UnixSockDir }),
		"unix_sock_rw_perms": permsKey(func(c *Config) *os.FileMode { return &c.UnixSockRWPerms }),
		"unix_sock_ro_perms": permsKey(func(c *Config) *os.FileMode { return &c.UnixSockROPerms }),
		"unix_sock_group":    stringKey(func(c *Config) *string { return &c.UnixSockGroup }),

		"auth_tcp":     authKey(func(c *Config) *string { return &c.AuthTCP }),
		"auth_tls":     authKey(func(c *Config) *string { return &c.AuthTLS }),
		"auth_unix_rw": authKey(func(c *Config) *string { return &c.AuthUnixRW }),
		"auth_unix_ro": authKey(func(c *Config) *string { return &c.AuthUnixRO }),

		"host_uuid": stringKey(func(c *Config) *string { return &c.HostUUID }),

		// libvirtd reads these as unsigned; keepalive_interval is signed
		// because -1 disables keepalive.
		"max_clients":           intKey(0, func(c *Config) *int { return &c.MaxClients }),
		"max_anonymous_clients": intKey(0, func(c *Config) *int { return &c.MaxAnonymousClients }),
		"max_client_requests":   intKey(0, func(c *Config) *int { return &c.MaxClientRequests }),
		"max_workers":           intKey(0, func(c *Config) *int { return &c.MaxWorkers }),
		"min_workers":           intKey(0, func(c *Config) *int { return &c.MinWorkers }),
		"keepalive_interval":    intKey(minInt32, func(c *Config) *int { return &c.KeepaliveInterval }),
		"keepalive_count":       intKey(0, func(c *Config) *int { return &c.KeepaliveCount }),
		"log_level":             {apply: applyLogLevel},

		"key_file":                  stringKey(func(c *Config) *string { return &c.KeyFile }),
		"cert_file":                 stringKey(func(c *Config) *string { return &c.CertFile }),
		"ca_file":                   stringKey(func(c *Config) *string { return &c.CAFile }),
		"crl_file":                  stringKey(func(c *Config) *string { return &c.CRLFile }),
		"tls_no_verify_certificate": boolKey(func(c *Config) *bool { return &c.TLSNoVerifyCertificate }),
		"tls_allowed_dn_list":       stringListKey(func(c *Config) *[]string { return &c.TLSAllowedDNList }),

		"state_dir":        stringKey(func(c *Config) *string { return &c.StateDir }),
		"hostname":         stringKey(func(c *Config) *string { return &c.Hostname }),
		"qemu_config":      stringKey(func(c *Config) *string { return &c.QemuConfig }),
		"log_rpc_calls":    boolKey(func(c *Config) *bool { return &c.LogRPCCalls }),
		"fault_injection":  stringListKey(func(c *Config) *[]string { return &c.FaultInjection }),
		"debug_pprof_addr": stringKey(func(c *Config) *string { return &c.DebugPprofAddr }),
		"network_default":  boolKey(func(c *Config) *bool { return &c.NetworkDefault }),
	}
	for _, k := range ignored {
		m[k] = key{}
	}
	return m
}()

const (
	minInt32 = -1 << 31
	maxInt32 = 1<<31 - 1
)

func wrongKind(want virconf.Kind, got virconf.Value) error {
	return fmt.Errorf("expected %s, got %s", want, got.Kind)
}

func boolKey(field func(*Config) *bool) key {
	return key{apply: func(c *Config, v virconf.Value) error {
		// libvirt booleans are the integers 0 and 1, nothing else.
		if v.Kind != virconf.Int {
			return fmt.Errorf("expected 0 or 1, got %s", v.Kind)
		}
		if v.Int != 0 && v.Int != 1 {
			return fmt.Errorf("expected 0 or 1, got %d", v.Int)
		}
		*field(c) = v.Int == 1
		return nil
	}}
}

// intKey accepts integers in [min, MaxInt32]; libvirtd stores these in C
// ints, so larger values would be rejected (or truncated) there too.
func intKey(min int64, field func(*Config) *int) key {
	return key{apply: func(c *Config, v virconf.Value) error {
		if v.Kind != virconf.Int {
			return wrongKind(virconf.Int, v)
		}
		if v.Int < min || v.Int > maxInt32 {
			if min == 0 && v.Int < 0 {
				return fmt.Errorf("must not be negative, got %d", v.Int)
			}
			return fmt.Errorf("value %d is out of range", v.Int)
		}
		*field(c) = int(v.Int)
		return nil
	}}
}

func stringKey(field func(*Config) *string) key {
	return key{apply: func(c *Config, v virconf.Value) error {
		if v.Kind != virconf.String {
			return wrongKind(virconf.String, v)
		}
		*field(c) = v.Str
		return nil
	}}
}

func stringListKey(field func(*Config) *[]string) key {
	return key{apply: func(c *Config, v virconf.Value) error {
		if v.Kind != virconf.List {
			return wrongKind(virconf.List, v)
		}
		out := make([]string, 0, len(v.List))
		for i, item := range v.List {
			if item.Kind != virconf.String {
				return fmt.Errorf("list item %d: expected %s, got %s", i+1, virconf.String, item.Kind)
			}
			out = append(out, item.Str)
		}
		*field(c) = out
		return nil
	}}
}

// portKey accepts a string as libvirt does, and also a bare integer since
// "tcp_port = 16509" is an easy and unambiguous slip.
func portKey(field func(*Config) *string) key {
	return key{apply: func(c *Config, v virconf.Value) error {
		switch v.Kind {
		case virconf.String:
			*field(c) = v.Str
		case virconf.Int:
			*field(c) = strconv.FormatInt(v.Int, 10)
		default:
			return wrongKind(virconf.String, v)
		}
		return nil
	}}
}

func permsKey(field func(*Config) *os.FileMode) key {
	return key{apply: func(c *Config, v virconf.Value) error {
		if v.Kind != virconf.String {
			// An unquoted 0700 would be read as decimal 700, so refuse
			// rather than guess.
			return fmt.Errorf("expected an octal string such as \"0770\", got %s (quote the value)", v.Kind)
		}
		n, err := strconv.ParseUint(v.Str, 8, 32)
		if err != nil || n > 0o777 {
			return fmt.Errorf("invalid permissions %q: expected octal permission bits such as \"0770\"", v.Str)
		}
		*field(c) = os.FileMode(n)
		return nil
	}}
}

// authSchemes are the values libvirtd accepts for auth_*; anything else is
// a typo and refused at load time, while supported-ness is left to Validate.
var authSchemes = map[string]bool{"none": true, "sasl": true, "polkit": true}

func authKey(field func(*Config) *string) key {
	return key{apply: func(c *Config, v virconf.Value) error {
		if v.Kind != virconf.String {
			return wrongKind(virconf.String, v)
		}
		if !authSchemes[v.Str] {
			return fmt.Errorf("unknown authentication scheme %q (libvirtd knows \"none\", \"sasl\" and \"polkit\")", v.Str)
		}
		*field(c) = v.Str
		return nil
	}}
}

func applyLogLevel(c *Config, v virconf.Value) error {
	if v.Kind != virconf.Int {
		return wrongKind(virconf.Int, v)
	}
	if v.Int == 0 {
		// libvirtd treats 0 as "leave the default level alone".
		c.LogLevel = Default().LogLevel
		return nil
	}
	if v.Int < 1 || v.Int > 4 {
		return fmt.Errorf("expected 1 (debug), 2 (info), 3 (warning) or 4 (error), got %d", v.Int)
	}
	c.LogLevel = int(v.Int)
	return nil
}

// Validate checks that the configuration is usable by govirtd. listen says
// whether the daemon was started with --listen: the TCP and TLS settings
// only matter then, so a stock libvirtd.conf (listen_tls = 1, auth_tcp =
// "sasl") is accepted when the daemon only serves its UNIX sockets. All
// problems are reported, not just the first.
func (c *Config) Validate(listen bool) error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	checkAuth := func(key, val string) {
		if val != "none" {
			add("%s = %q: only \"none\" is implemented by govirtd", key, val)
		}
	}
	checkAuth("auth_unix_rw", c.AuthUnixRW)
	checkAuth("auth_unix_ro", c.AuthUnixRO)
	if listen && c.ListenTCP {
		checkAuth("auth_tcp", c.AuthTCP)
	}
	if listen && c.ListenTLS {
		// libvirtd's TLS listener may add SASL on top of the certificate
		// check; govirtd does the certificate check only.
		checkAuth("auth_tls", c.AuthTLS)
		// Refuse to start rather than fail every client later, as libvirtd
		// does when it cannot load its credentials. Only readability is
		// checked here; the server parses the files when it listens.
		ca, crl, cert, key := c.TLSFiles()
		checkFile := func(confKey, what, path string) {
			f, err := os.Open(path)
			if err != nil {
				var pe *os.PathError
				if errors.As(err, &pe) {
					err = pe.Err
				}
				add("listen_tls = 1: cannot read %s '%s' (%s): %v", what, path, confKey, err)
				return
			}
			f.Close()
		}
		checkFile("ca_file", "CA certificate", ca)
		checkFile("cert_file", "server certificate", cert)
		checkFile("key_file", "server private key", key)
		if crl != "" {
			checkFile("crl_file", "CA revocation list", crl)
		}
	}

	checkPort := func(key, val string) {
		n, err := strconv.Atoi(val)
		if err != nil || n < 1 || n > 65535 {
			add("%s = %q: expected a port number between 1 and 65535", key, val)
		}
	}
	checkPort("tcp_port", c.TCPPort)
	checkPort("tls_port", c.TLSPort)

	checkPerms := func(key string, m os.FileMode) {
		if m&^0o777 != 0 {
			add("%s = %#o: only permission bits (0 to 0777) are allowed", key, uint32(m))
		}
	}
	checkPerms("unix_sock_rw_perms", c.UnixSockRWPerms)
	checkPerms("unix_sock_ro_perms", c.UnixSockROPerms)

	if c.UnixSockDir == "" {
		add("unix_sock_dir must not be empty")
	}
	if c.StateDir == "" {
		add("state_dir must not be empty")
	}
	if c.KeepaliveCount < 0 {
		add("keepalive_count = %d: must not be negative", c.KeepaliveCount)
	}
	if c.MaxClientRequests < 1 {
		add("max_client_requests = %d: must be at least 1", c.MaxClientRequests)
	}
	if c.MaxWorkers < 1 {
		add("max_workers = %d: must be at least 1", c.MaxWorkers)
	}
	if c.MinWorkers < 0 || c.MinWorkers > c.MaxWorkers {
		add("min_workers = %d: must be between 0 and max_workers (%d)", c.MinWorkers, c.MaxWorkers)
	}
	if c.MaxClients < 0 || c.MaxAnonymousClients < 0 {
		add("max_clients and max_anonymous_clients must not be negative")
	}
	if c.LogLevel < 1 || c.LogLevel > 4 {
		add("log_level = %d: expected 1 (debug), 2 (info), 3 (warning) or 4 (error)", c.LogLevel)
	}
	if c.HostUUID != "" {
		if _, err := ParseHostUUID(c.HostUUID); err != nil {
			add("host_uuid = %q: %w", c.HostUUID, err)
		}
	}
	return errors.Join(errs...)
}

// ParseHostUUID parses a host UUID the way libvirt does: 32 hex digits,
// with '-' allowed between byte pairs and surrounding blanks ignored. Like
// libvirt it refuses UUIDs whose bytes are all identical (e.g. all zeros),
// which firmware commonly reports in place of a real UUID.
func ParseHostUUID(s string) ([16]byte, error) {
	u, err := compat.ParseUUID(s)
	if err != nil {
		return [16]byte{}, fmt.Errorf("invalid UUID: %w", err)
	}
	same := true
	for _, b := range u[1:] {
		if b != u[0] {
			same = false
			break
		}
	}
	if same {
		return [16]byte{}, errors.New("invalid UUID: all bytes are the same, which libvirt refuses as a placeholder value")
	}
	return u, nil
}

// EffectiveHostname returns the configured hostname, or the OS hostname when
// none is configured. (It cannot be called Hostname because that is the
// field's name.)
func (c *Config) EffectiveHostname() (string, error) {
	if c.Hostname != "" {
		return c.Hostname, nil
	}
	h, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("getting the OS hostname (set hostname in the configuration to avoid this): %w", err)
	}
	return h, nil
}
