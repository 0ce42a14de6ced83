package qemu

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/govirtd/govirtd/compat/virconf"
	"github.com/govirtd/govirtd/driver/qemu/convergence"
)

// qemuConf is the part of qemu.conf the driver reads (libvirt's keys and
// defaults).
type qemuConf struct {
	// MigrationAddress is where an incoming migration listens
	// (migration_address); "" means all addresses.
	MigrationAddress string
	// MigrationHost is the host name or address put in the URI given to the
	// source (migration_host); "" means derive it, see migrationHost.
	MigrationHost string
	// MigrationPortMin/Max bound the ports of incoming migrations.
	MigrationPortMin, MigrationPortMax int
	// RemoteDisplayPortMin/Max bound the ports autoport VNC and SPICE
	// displays get (remote_display_port_min/max).
	RemoteDisplayPortMin, RemoteDisplayPortMax int
	// VNCListen and SpiceListen are where displays without a listen
	// address listen (vnc_listen, spice_listen).
	VNCListen, SpiceListen string
	// MigrateTLSDir holds the x509 credentials of --tls migrations
	// (migrate_tls_x509_cert_dir, else default_tls_x509_cert_dir), in
	// QEMU's names: ca-cert.pem, server-cert.pem, server-key.pem,
	// client-cert.pem, client-key.pem.
	MigrateTLSDir string
	// MigrateTLSVerify makes the destination check the source's client
	// certificate (migrate_tls_x509_verify, else default_tls_x509_verify).
	MigrateTLSVerify bool
	// MigrateTLSForce refuses migrations without --tls
	// (migrate_tls_force).
	MigrateTLSForce bool
	// ConvergenceStall and ConvergenceActions are govirtd's own keys
	// (migration_convergence_stall in seconds, 0 = off, the default;
	// migration_convergence_actions, a list of "throttle", "postcopy",
	// "abort"): the convergence guard's policy for outgoing migrations.
	ConvergenceStall   time.Duration
	ConvergenceActions []convergence.Action
}

func defaultQemuConf() qemuConf {
	return qemuConf{
		MigrationPortMin: 49152, MigrationPortMax: 49215,
		RemoteDisplayPortMin: 5900, RemoteDisplayPortMax: 65535,
		VNCListen: "127.0.0.1", SpiceListen: "127.0.0.1",
		MigrateTLSDir: "/etc/pki/qemu", MigrateTLSVerify: true,
	}
}

// loadQemuConf reads a qemu.conf-syntax file; "" means defaults. Keys the
// driver does not use are ignored, as a qemu.conf holds many.
func loadQemuConf(path string) (qemuConf, error) {
	c := defaultQemuConf()
	if path == "" {
		return c, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, fmt.Errorf("qemu_config %s: %w", path, err)
	}
	if err != nil {
		return c, err
	}
	f, err := virconf.Parse(data)
	if err != nil {
		return c, fmt.Errorf("%s %w", path, err)
	}
	str := func(key string, dst *string) error {
		if e, ok := f.Lookup(key); ok {
			if e.Value.Kind != virconf.String {
				return fmt.Errorf("%s line %d: %s: expected a string", path, e.Line, key)
			}
			*dst = e.Value.Str
		}
		return nil
	}
	num := func(key string, dst *int) error {
		if e, ok := f.Lookup(key); ok {
			if e.Value.Kind != virconf.Int || e.Value.Int < 1 || e.Value.Int > 65535 {
				return fmt.Errorf("%s line %d: %s: expected a port number", path, e.Line, key)
			}
			*dst = int(e.Value.Int)
		}
		return nil
	}
	boolean := func(key string, dst *bool) error {
		if e, ok := f.Lookup(key); ok {
			if e.Value.Kind != virconf.Int || (e.Value.Int != 0 && e.Value.Int != 1) {
				return fmt.Errorf("%s line %d: %s: expected 0 or 1", path, e.Line, key)
			}
			*dst = e.Value.Int == 1
		}
		return nil
	}
	// The migrate_ keys fall back to the default_ ones, as in libvirt.
	for _, err := range []error{
		str("default_tls_x509_cert_dir", &c.MigrateTLSDir),
		boolean("default_tls_x509_verify", &c.MigrateTLSVerify),
		str("migrate_tls_x509_cert_dir", &c.MigrateTLSDir),
		boolean("migrate_tls_x509_verify", &c.MigrateTLSVerify),
		boolean("migrate_tls_force", &c.MigrateTLSForce),
		str("migration_address", &c.MigrationAddress),
		str("migration_host", &c.MigrationHost),
		num("migration_port_min", &c.MigrationPortMin),
		num("migration_port_max", &c.MigrationPortMax),
		num("remote_display_port_min", &c.RemoteDisplayPortMin),
		num("remote_display_port_max", &c.RemoteDisplayPortMax),
		str("vnc_listen", &c.VNCListen),
		str("spice_listen", &c.SpiceListen),
	} {
		if err != nil {
			return c, err
		}
	}
	if e, ok := f.Lookup("migration_convergence_stall"); ok {
		if e.Value.Kind != virconf.Int || e.Value.Int < 0 || e.Value.Int > 86400 {
			return c, fmt.Errorf("%s line %d: migration_convergence_stall: expected seconds (0 to 86400)", path, e.Line)
		}
		c.ConvergenceStall = time.Duration(e.Value.Int) * time.Second
	}
	if e, ok := f.Lookup("migration_convergence_actions"); ok {
		var names []string
		if e.Value.Kind == virconf.List {
			for _, v := range e.Value.List {
				if v.Kind != virconf.String {
					return c, fmt.Errorf("%s line %d: migration_convergence_actions: expected a list of strings", path, e.Line)
				}
				names = append(names, v.Str)
			}
		}
		if e.Value.Kind != virconf.List || len(names) == 0 {
			return c, fmt.Errorf("%s line %d: migration_convergence_actions: expected a list of strings", path, e.Line)
		}
		acts, err := convergence.ParseActions(names)
		if err != nil {
			return c, fmt.Errorf("%s line %d: migration_convergence_actions: %w", path, e.Line, err)
		}
		c.ConvergenceActions = acts
	}
	// qemu.conf: the display range starts at 5900 at the lowest, since
	// VNC numbers displays from there.
	if c.RemoteDisplayPortMin < 5900 || c.RemoteDisplayPortMin > c.RemoteDisplayPortMax {
		return c, fmt.Errorf("%s: remote_display_port_min %d must be at least 5900 and at most remote_display_port_max %d", path, c.RemoteDisplayPortMin, c.RemoteDisplayPortMax)
	}
	if c.MigrationPortMin > c.MigrationPortMax {
		return c, fmt.Errorf("%s: migration_port_min %d is above migration_port_max %d", path, c.MigrationPortMin, c.MigrationPortMax)
	}
	return c, nil
}
