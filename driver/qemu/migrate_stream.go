package qemu

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver/qemu/qmp"
)

// migrationFDName is the name the source QEMU knows the stream's socket by.
const migrationFDName = "migrate"

// connectMigrationStream opens a tcp: migration URI itself and hands the
// connected socket to QEMU ("getfd" + "fd:migrate"), as libvirt does, and
// returns the URI to give QEMU's migrate command. The socket has Nagle's
// algorithm off (Go's default for TCP): QEMU's own connection leaves it on,
// and its last small writes before the switch-over then wait for the
// destination's delayed ACK (40 ms on Linux) while the guest is paused.
// Other URIs (unix:, the tunnel's) are QEMU's to open.
func connectMigrationStream(ctx context.Context, mon *qmp.Monitor, uri string) (string, error) {
	addr, ok := tcpMigrationAddr(uri)
	if !ok {
		return uri, nil
	}
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		return "", compat.Errorf(libvirt.ErrSystemError, compat.FromRPC, "unable to connect to server at '%s': %v", addr, unwrapSyscall(err))
	}
	defer conn.Close() // QEMU has its own copy once getfd returned
	f, err := conn.(*net.TCPConn).File()
	if err != nil {
		return "", fmt.Errorf("migration socket: %w", err)
	}
	defer f.Close()
	if err := mon.GetFD(ctx, migrationFDName, f); err != nil {
		return "", compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "migration out job: pass the migration socket: %v", err)
	}
	return "fd:" + migrationFDName, nil
}

// tcpMigrationAddr returns the HOST:PORT of a tcp: migration URI, in
// either form libvirt accepts: QEMU's "tcp:HOST:PORT" (what Prepare
// returns) and the URI form "tcp://HOST:PORT[/]" a user may pass with
// --migrateuri.
func tcpMigrationAddr(uri string) (string, bool) {
	rest, ok := strings.CutPrefix(uri, "tcp:")
	if !ok {
		return "", false
	}
	if hostPort, isURI := strings.CutPrefix(rest, "//"); isURI {
		hostPort, _, _ = strings.Cut(hostPort, "/")
		return hostPort, true
	}
	return rest, true
}

// unwrapSyscall reduces a dial error to its system error ("Connection
// refused"), as libvirt words it.
func unwrapSyscall(err error) error {
	var se *os.SyscallError
	if errors.As(err, &se) {
		return se.Err
	}
	return err
}
