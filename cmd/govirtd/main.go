// Command govirtd is a libvirt-compatible virtualization daemon: unmodified
// libvirt clients (virsh, python-libvirt, go-libvirt) connect to it as to
// libvirtd, and it runs domains as QEMU processes.
//
// Usage mirrors libvirtd:
//
//	govirtd [-f FILE] [--listen] [-p PIDFILE] [--version] [-v]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/govirtd/govirtd/driver/network"
	"github.com/govirtd/govirtd/driver/qemu"
	"github.com/govirtd/govirtd/driver/secret"
	"github.com/govirtd/govirtd/driver/storage"
	"github.com/govirtd/govirtd/server"
	"github.com/govirtd/govirtd/server/config"
)

// Version is govirtd's own version.
const Version = "0.1.0"

// defaultConfig is read when -f is not given; unlike an explicit -f, it may
// be absent.
const defaultConfig = "/etc/govirtd/govirtd.conf"

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "govirtd: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("govirtd", flag.ContinueOnError)
	var (
		configPath string
		pidFile    string
		listen     bool
		verbose    bool
		version    bool
		logCalls   bool
	)
	for _, n := range []string{"f", "config"} {
		fs.StringVar(&configPath, n, "", "configuration file (libvirtd.conf syntax)")
	}
	for _, n := range []string{"p", "pid-file"} {
		fs.StringVar(&pidFile, n, "", "write the daemon's pid to this file")
	}
	for _, n := range []string{"l", "listen"} {
		fs.BoolVar(&listen, n, false, "listen for TCP/TLS connections, as configured by listen_tcp/listen_tls")
	}
	for _, n := range []string{"v", "verbose"} {
		fs.BoolVar(&verbose, n, false, "log at debug level")
	}
	for _, n := range []string{"V", "version"} {
		fs.BoolVar(&version, n, false, "print the version and exit")
	}
	fs.BoolVar(&logCalls, "log-rpc-calls", false, "log every RPC call with its procedure name (same as log_rpc_calls = 1)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if version {
		fmt.Printf("govirtd %s (libvirt %s protocol compatible)\n", Version, "9.0.0")
		return nil
	}

	cfg, warnings, err := loadConfig(configPath)
	if err != nil {
		return err
	}
	if logCalls {
		cfg.LogRPCCalls = true
	}
	log := newLogger(cfg.LogLevel, verbose)
	for _, w := range warnings {
		log.Warn("config", "warning", w)
	}
	if err := cfg.Validate(listen); err != nil {
		return fmt.Errorf("invalid configuration: %w", err)
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return fmt.Errorf("create state_dir: %w", err)
	}
	if pidFile != "" {
		release, err := writePIDFile(pidFile)
		if err != nil {
			return err
		}
		defer release()
	}
	hostUUID, err := hostUUID(cfg)
	if err != nil {
		return err
	}
	hostname, err := cfg.EffectiveHostname()
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// The network driver first: autostarted networks are up before
	// domains that use them come back.
	netCtx, netCancel := context.WithTimeout(ctx, 60*time.Second)
	nets, err := network.New(netCtx, network.Options{
		StateDir:      cfg.StateDir,
		Log:           log,
		SysctlDir:     "/proc/sys",
		DefineDefault: cfg.NetworkDefault,
	})
	netCancel()
	if err != nil {
		return err
	}
	// Storage pools next, for the same reason: the pool definitions live
	// in <state_dir>/storage, as libvirt's in /etc/libvirt/storage.
	pools, err := storage.New(filepath.Join(cfg.StateDir, "storage"), log)
	if err != nil {
		return err
	}
	poolCtx, poolCancel := context.WithTimeout(ctx, 60*time.Second)
	pools.Autostart(poolCtx)
	poolCancel()
	probeCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	drv, err := qemu.New(probeCtx, qemu.Options{
		HostUUID:       hostUUID,
		Hostname:       hostname,
		StateDir:       cfg.StateDir,
		Log:            log,
		QemuConfig:     cfg.QemuConfig,
		SelfURI:        selfURI(cfg, listen, hostname),
		ListenAddr:     cfg.ListenAddr,
		FaultInjection: cfg.FaultInjection,
		Networks:       nets,
		Volumes:        pools,
	})
	cancel()
	if err != nil {
		return err
	}
	// Running domains keep running when the daemon stops, as with
	// libvirtd: the next start finds them again.
	defer drv.Close()
	// Secrets persist in their own directory under the state dir, readable
	// by the daemon's user only (the driver makes it 0700).
	secrets, err := secret.New(filepath.Join(cfg.StateDir, "secrets"), log)
	if err != nil {
		return err
	}
	srv := server.New(cfg, drv, log, server.WithSecrets(secrets), server.WithNetworks(nets), server.WithStorage(pools))
	if err := srv.Listen(listen); err != nil {
		return err
	}
	// 1 MiB: after a burst the idle heap left behind is a few MiB, a quarter
	// of an idle daemon's RSS; a forced GC of a small heap every 5 s costs
	// well under a millisecond.
	go releaseMemory(ctx, 5*time.Second, 1<<20)
	if cfg.DebugPprofAddr != "" {
		if err := servePprof(cfg.DebugPprofAddr, log); err != nil {
			return err
		}
	}
	log.Info("govirtd started", "version", Version, "hostname", hostname, "host_uuid", hostUUID, "state_dir", cfg.StateDir)
	<-ctx.Done()
	log.Info("shutting down")
	srv.Close()
	return nil
}

// selfURI is how other hosts reach this daemon: its TCP listener when it
// has one, else its TLS listener (a peer dials it with its own client
// certificate from libvirt's default PKI paths), else its unix socket
// (reachable from the same machine only).
func selfURI(cfg *config.Config, listen bool, hostname string) string {
	host := cfg.ListenAddr
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = hostname
	}
	switch {
	case listen && cfg.ListenTCP:
		return "qemu+tcp://" + net.JoinHostPort(host, cfg.TCPPort) + "/system"
	case listen && cfg.ListenTLS:
		return "qemu+tls://" + net.JoinHostPort(host, cfg.TLSPort) + "/system"
	}
	return "qemu+unix:///system?socket=" + filepath.Join(cfg.UnixSockDir, "libvirt-sock")
}

func loadConfig(path string) (*config.Config, []string, error) {
	if path == "" {
		if _, err := os.Stat(defaultConfig); errors.Is(err, os.ErrNotExist) {
			return config.Default(), nil, nil
		}
		path = defaultConfig
	}
	return config.Load(path)
}

// newLogger maps libvirtd's log_level (1 debug … 4 error) onto slog.
func newLogger(level int, verbose bool) *slog.Logger {
	l := slog.LevelWarn
	switch level {
	case 1:
		l = slog.LevelDebug
	case 2:
		l = slog.LevelInfo
	case 4:
		l = slog.LevelError
	}
	if verbose {
		l = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

// servePprof exposes Go's profiler on a loopback address only: it reveals
// the daemon's internals and must not be reachable from elsewhere.
func servePprof(addr string, log *slog.Logger) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("debug_pprof_addr %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("debug_pprof_addr %q: must be a loopback address", addr)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("debug_pprof_addr: %w", err)
	}
	log.Info("profiling endpoints", "addr", "http://"+addr+"/debug/pprof/")
	go http.Serve(l, nil)
	return nil
}
