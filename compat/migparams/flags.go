package migparams

import (
	"fmt"
	"strings"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
)

// Flags is a virDomainMigrateFlags bit set.
type Flags uint32

// Migration flags (libvirt-domain.h, virDomainMigrateFlags).
const (
	Live                       Flags = 1 << 0
	PeerToPeer                 Flags = 1 << 1
	Tunnelled                  Flags = 1 << 2
	PersistDest                Flags = 1 << 3
	UndefineSource             Flags = 1 << 4
	Paused                     Flags = 1 << 5
	NonSharedDisk              Flags = 1 << 6
	NonSharedInc               Flags = 1 << 7
	ChangeProtection           Flags = 1 << 8
	Unsafe                     Flags = 1 << 9
	Offline                    Flags = 1 << 10
	Compressed                 Flags = 1 << 11
	AbortOnError               Flags = 1 << 12
	AutoConverge               Flags = 1 << 13
	RDMAPinAll                 Flags = 1 << 14
	Postcopy                   Flags = 1 << 15
	TLS                        Flags = 1 << 16
	Parallel                   Flags = 1 << 17
	NonSharedSynchronousWrites Flags = 1 << 18
	PostcopyResume             Flags = 1 << 19
	Zerocopy                   Flags = 1 << 20
)

// Known is QEMU_MIGRATION_FLAGS in libvirt 9.0: every flag the QEMU driver
// accepts before looking at combinations.
const Known = Live | PeerToPeer | Tunnelled | PersistDest | UndefineSource |
	Paused | NonSharedDisk | NonSharedInc | ChangeProtection | Unsafe |
	Offline | Compressed | AbortOnError | AutoConverge | RDMAPinAll |
	Postcopy | TLS | Parallel | NonSharedSynchronousWrites |
	PostcopyResume | Zerocopy

// Unimplemented are the flags libvirt accepts but govirtd refuses: RDMA
// needs RDMA hardware, and zero-copy needs locked memory limits govirtd
// does not manage.
const Unimplemented = RDMAPinAll | Zerocopy

var flagNames = []struct {
	f    Flags
	name string
}{
	{Live, "VIR_MIGRATE_LIVE"},
	{PeerToPeer, "VIR_MIGRATE_PEER2PEER"},
	{Tunnelled, "VIR_MIGRATE_TUNNELLED"},
	{PersistDest, "VIR_MIGRATE_PERSIST_DEST"},
	{UndefineSource, "VIR_MIGRATE_UNDEFINE_SOURCE"},
	{Paused, "VIR_MIGRATE_PAUSED"},
	{NonSharedDisk, "VIR_MIGRATE_NON_SHARED_DISK"},
	{NonSharedInc, "VIR_MIGRATE_NON_SHARED_INC"},
	{ChangeProtection, "VIR_MIGRATE_CHANGE_PROTECTION"},
	{Unsafe, "VIR_MIGRATE_UNSAFE"},
	{Offline, "VIR_MIGRATE_OFFLINE"},
	{Compressed, "VIR_MIGRATE_COMPRESSED"},
	{AbortOnError, "VIR_MIGRATE_ABORT_ON_ERROR"},
	{AutoConverge, "VIR_MIGRATE_AUTO_CONVERGE"},
	{RDMAPinAll, "VIR_MIGRATE_RDMA_PIN_ALL"},
	{Postcopy, "VIR_MIGRATE_POSTCOPY"},
	{TLS, "VIR_MIGRATE_TLS"},
	{Parallel, "VIR_MIGRATE_PARALLEL"},
	{NonSharedSynchronousWrites, "VIR_MIGRATE_NON_SHARED_SYNCHRONOUS_WRITES"},
	{PostcopyResume, "VIR_MIGRATE_POSTCOPY_RESUME"},
	{Zerocopy, "VIR_MIGRATE_ZEROCOPY"},
}

// String renders the set for logs, e.g. "VIR_MIGRATE_LIVE|VIR_MIGRATE_PEER2PEER",
// with any unknown bits as a trailing hex number; "0" for none.
func (f Flags) String() string {
	if f == 0 {
		return "0"
	}
	var parts []string
	rest := f
	for _, n := range flagNames {
		if f&n.f != 0 {
			parts = append(parts, n.name)
			rest &^= n.f
		}
	}
	if rest != 0 {
		parts = append(parts, fmt.Sprintf("0x%x", uint32(rest)))
	}
	return strings.Join(parts, "|")
}

// CheckKnown is libvirt's virCheckFlags for a migration entry point: bits
// outside QEMU_MIGRATION_FLAGS are refused with VIR_ERR_INVALID_ARG. fn is
// the driver function libvirt names in the message (for example
// "qemuDomainMigrateBegin3Params"). The wording is libvirt 9.0's
// ("%s: unsupported flags (0x%lx)"); the positional form came with 9.1.
func CheckKnown(flags Flags, fn string) error {
	if extra := flags &^ Known; extra != 0 {
		return compat.Errorf(libvirt.ErrInvalidArg, compat.FromQEMU,
			"%s: unsupported flags (0x%x)", fn, uint32(extra))
	}
	return nil
}

// CheckFlags refuses flag combinations libvirt 9.0 refuses, with its
// wording, then the flags govirtd does not implement:
//
//   - NON_SHARED_DISK with NON_SHARED_INC: VIR_ERR_INVALID_ARG "Flags
//     'VIR_MIGRATE_NON_SHARED_DISK' and 'VIR_MIGRATE_NON_SHARED_INC' are
//     mutually exclusive" (VIR_EXCLUSIVE_FLAGS_GOTO in libvirt-domain.c);
//   - TUNNELLED without PEER2PEER: VIR_ERR_INVALID_ARG "cannot perform
//     tunnelled migration without using peer2peer flag" (virDomainMigrate3
//     in libvirt-domain.c; the client library normally catches it, a
//     daemon only sees it from a non-libvirt client);
//   - qemuMigrationSrcBeginPhase, VIR_FROM_QEMU:
//     POSTCOPY without LIVE or with PAUSED → VIR_ERR_ARGUMENT_UNSUPPORTED
//     "post-copy migration is not supported with non-live or paused migration";
//     POSTCOPY with TUNNELLED → VIR_ERR_ARGUMENT_UNSUPPORTED
//     "post-copy is not supported with tunnelled migration";
//     OFFLINE with NON_SHARED_* → VIR_ERR_OPERATION_INVALID
//     "offline migration cannot handle non-shared storage";
//     OFFLINE without PERSIST_DEST → VIR_ERR_OPERATION_INVALID
//     "offline migration must be specified with the persistent flag set";
//     OFFLINE with TUNNELLED → VIR_ERR_OPERATION_INVALID
//     "tunnelled offline migration does not make sense";
//     ZEROCOPY without PARALLEL → VIR_ERR_OPERATION_INVALID
//     "zero-copy is only available for parallel migration";
//     NON_SHARED_* with TUNNELLED → VIR_ERR_OPERATION_UNSUPPORTED
//     "migration of non-shared storage is not supported with tunnelled
//     migration and this QEMU".
//   - then the Unimplemented flags, lowest bit first:
//     VIR_ERR_ARGUMENT_UNSUPPORTED "migration flag VIR_MIGRATE_X is not
//     supported by govirtd".
//
// OFFLINE together with LIVE is accepted: libvirt 9.0's QEMU driver has no
// such check (offline simply wins: no QEMU is involved).
func CheckFlags(flags Flags) error {
	if flags&NonSharedDisk != 0 && flags&NonSharedInc != 0 {
		return compat.Errorf(libvirt.ErrInvalidArg, compat.FromDomain,
			"Flags 'VIR_MIGRATE_NON_SHARED_DISK' and 'VIR_MIGRATE_NON_SHARED_INC' are mutually exclusive")
	}
	if flags&Tunnelled != 0 && flags&PeerToPeer == 0 {
		return compat.Errorf(libvirt.ErrInvalidArg, compat.FromDomain,
			"cannot perform tunnelled migration without using peer2peer flag")
	}
	if flags&Postcopy != 0 && (flags&Live == 0 || flags&Paused != 0) {
		return compat.Errorf(libvirt.ErrArgumentUnsupported, compat.FromQEMU,
			"post-copy migration is not supported with non-live or paused migration")
	}
	if flags&Postcopy != 0 && flags&Tunnelled != 0 {
		return compat.Errorf(libvirt.ErrArgumentUnsupported, compat.FromQEMU,
			"post-copy is not supported with tunnelled migration")
	}
	if flags&Offline != 0 {
		if flags&(NonSharedDisk|NonSharedInc) != 0 {
			return compat.Errorf(libvirt.ErrOperationInvalid, compat.FromQEMU,
				"offline migration cannot handle non-shared storage")
		}
		if flags&PersistDest == 0 {
			return compat.Errorf(libvirt.ErrOperationInvalid, compat.FromQEMU,
				"offline migration must be specified with the persistent flag set")
		}
		if flags&Tunnelled != 0 {
			return compat.Errorf(libvirt.ErrOperationInvalid, compat.FromQEMU,
				"tunnelled offline migration does not make sense")
		}
	}
	if flags&Zerocopy != 0 && flags&Parallel == 0 {
		return compat.Errorf(libvirt.ErrOperationInvalid, compat.FromQEMU,
			"zero-copy is only available for parallel migration")
	}
	if flags&TLS != 0 && flags&Tunnelled != 0 {
		// A tunnelled stream travels inside the libvirt connection,
		// whose own TLS (qemu+tls://) protects it.
		return compat.Errorf(libvirt.ErrArgumentUnsupported, compat.FromQEMU,
			"TLS migration is not supported with tunnelled migration by govirtd: use a qemu+tls:// connection")
	}
	if flags&Parallel != 0 && flags&Tunnelled != 0 {
		// The tunnel is one stream; multifd needs connections of its own.
		return compat.Errorf(libvirt.ErrArgumentUnsupported, compat.FromQEMU,
			"parallel migration is not supported with tunnelled migration by govirtd")
	}
	if flags&(NonSharedDisk|NonSharedInc) != 0 && flags&Tunnelled != 0 {
		return compat.Errorf(libvirt.ErrOperationUnsupported, compat.FromQEMU,
			"migration of non-shared storage is not supported with tunnelled migration and this QEMU")
	}
	for _, n := range flagNames {
		if flags&n.f != 0 && Unimplemented&n.f != 0 {
			return compat.Errorf(libvirt.ErrArgumentUnsupported, compat.FromQEMU,
				"migration flag %s is not supported by govirtd", n.name)
		}
	}
	return nil
}

// DestFlags are the flags a peer-to-peer source passes to the destination's
// Prepare3/Finish3: libvirt strips ABORT_ON_ERROR and AUTO_CONVERGE, which
// only concern the source QEMU (qemuMigrationSrcPerformPeer2Peer3).
func (f Flags) DestFlags() Flags {
	return f &^ (AbortOnError | AutoConverge)
}
