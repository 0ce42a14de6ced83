// Package migparams holds libvirt's migration parameters, flags and job
// statistics as libvirt 9.0's QEMU driver understands them.
//
// Sources (libvirt/libvirt): include/libvirt/libvirt-domain.h for names and
// values, src/qemu/qemu_migration.h (QEMU_MIGRATION_PARAMETERS) for the
// accepted parameter list, src/qemu/qemu_migration.c
// (qemuMigrationSrcBeginPhase, qemuMigrationSrcPerformPeer2Peer3) for flag
// checks and parameter order, src/qemu/qemu_domainjob.c
// (qemuDomainMigrationJobDataToParams) for job statistics.
package migparams

import (
	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat/typedparams"
)

// Parameter names (VIR_MIGRATE_PARAM_*).
const (
	ParamURI                   = "migrate_uri"
	ParamDestName              = "destination_name"
	ParamDestXML               = "destination_xml"
	ParamPersistXML            = "persistent_xml"
	ParamBandwidth             = "bandwidth"
	ParamBandwidthPostcopy     = "bandwidth.postcopy"
	ParamGraphicsURI           = "graphics_uri"
	ParamListenAddress         = "listen_address"
	ParamMigrateDisks          = "migrate_disks"
	ParamDisksPort             = "disks_port"
	ParamDisksURI              = "disks_uri"
	ParamCompression           = "compression"
	ParamCompressionMTLevel    = "compression.mt.level"
	ParamCompressionMTThreads  = "compression.mt.threads"
	ParamCompressionMTDThreads = "compression.mt.dthreads"
	ParamCompressionXBZRLE     = "compression.xbzrle.cache"
	ParamCompressionZlibLevel  = "compression.zlib.level"
	ParamCompressionZstdLevel  = "compression.zstd.level"
	ParamAutoConvergeInitial   = "auto_converge.initial"
	ParamAutoConvergeIncrement = "auto_converge.increment"
	ParamParallelConnections   = "parallel.connections"
	ParamTLSDestination        = "tls.destination"
	// ParamConvergenceStall is govirtd's own (ULLONG, seconds): the
	// convergence guard's stall time for this migration, overriding
	// qemu.conf's migration_convergence_stall; 0 turns the guard off. It
	// is not forwarded to a peer-to-peer destination (libvirtd would
	// refuse a parameter it does not know).
	ParamConvergenceStall = "govirtd.convergence_stall"
)

// Accepted is libvirt 9.0's QEMU_MIGRATION_PARAMETERS: every parameter the
// QEMU driver's *3Params entry points accept, with its type, plus the
// compression.zlib.level / compression.zstd.level of libvirt 9.4, which go
// with the multifd compression methods zlib and zstd (TuningFor) that
// govirtd takes from 9.4 because a non-converging guest needs them with
// --parallel. A libvirtd 9.0 peer refuses both as unsupported.
var Accepted = map[string]typedparams.Type{
	ParamURI:                   typedparams.TypeString,
	ParamDestName:              typedparams.TypeString,
	ParamDestXML:               typedparams.TypeString,
	ParamBandwidth:             typedparams.TypeULLong,
	ParamGraphicsURI:           typedparams.TypeString,
	ParamListenAddress:         typedparams.TypeString,
	ParamMigrateDisks:          typedparams.TypeString | typedparams.Multiple,
	ParamDisksPort:             typedparams.TypeInt,
	ParamCompression:           typedparams.TypeString | typedparams.Multiple,
	ParamCompressionMTLevel:    typedparams.TypeInt,
	ParamCompressionMTThreads:  typedparams.TypeInt,
	ParamCompressionMTDThreads: typedparams.TypeInt,
	ParamCompressionXBZRLE:     typedparams.TypeULLong,
	ParamCompressionZlibLevel:  typedparams.TypeInt,
	ParamCompressionZstdLevel:  typedparams.TypeInt,
	ParamPersistXML:            typedparams.TypeString,
	ParamAutoConvergeInitial:   typedparams.TypeInt,
	ParamAutoConvergeIncrement: typedparams.TypeInt,
	ParamBandwidthPostcopy:     typedparams.TypeULLong,
	ParamParallelConnections:   typedparams.TypeInt,
	ParamTLSDestination:        typedparams.TypeString,
	ParamConvergenceStall:      typedparams.TypeULLong,
	ParamDisksURI:              typedparams.TypeString,
}

// Params is a decoded set of migration parameters. For the integer
// parameters where 0 is a meaningful value (or where "absent" must be told
// from "0" to forward them faithfully), Has* records presence. libvirt
// itself treats 0 as "not set" for bandwidth, bandwidth.postcopy and
// disks_port, so those have no presence flag.
type Params struct {
	URI               string // migrate_uri
	DestName          string // destination_name
	DestXML           string // destination_xml
	PersistXML        string // persistent_xml
	Bandwidth         uint64 // MiB/s; 0 = libvirt's default
	BandwidthPostcopy uint64 // MiB/s; 0 = unlimited
	GraphicsURI       string
	ListenAddress     string
	MigrateDisks      []string
	DisksPort         int
	DisksURI          string
	Compression       []string

	CompressionMTLevel     int
	CompressionMTThreads   int
	CompressionMTDThreads  int
	CompressionXBZRLECache uint64
	CompressionZlibLevel   int
	CompressionZstdLevel   int
	AutoConvergeInitial    int
	AutoConvergeIncrement  int
	ParallelConnections    int
	TLSDestination         string
	// ConvergenceStall is govirtd.convergence_stall, when given.
	ConvergenceStall    uint64
	HasConvergenceStall bool

	HasCompressionMTLevel     bool
	HasCompressionMTThreads   bool
	HasCompressionMTDThreads  bool
	HasCompressionXBZRLECache bool
	HasCompressionZlibLevel   bool
	HasCompressionZstdLevel   bool
	HasAutoConvergeInitial    bool
	HasAutoConvergeIncrement  bool
	HasParallelConnections    bool
}

// Parse validates params against Accepted with libvirt's errors
// (typedparams.Validate: unknown name → VIR_ERR_ARGUMENT_UNSUPPORTED
// "parameter '%s' not supported", wrong type or a repeated single-valued
// name → VIR_ERR_INVALID_ARG) and decodes them.
func Parse(params []libvirt.TypedParam) (*Params, error) {
	if err := typedparams.Validate(params, Accepted); err != nil {
		return nil, err
	}
	p := &Params{}
	// After Validate every getter below sees the right type, so their
	// errors can only come from a malformed union; keep the first.
	var firstErr error
	str := func(name string) string {
		v, _, err := typedparams.String(params, name)
		if err != nil && firstErr == nil {
			firstErr = err
		}
		return v
	}
	ull := func(name string) (uint64, bool) {
		v, found, err := typedparams.Uint64(params, name)
		if err != nil && firstErr == nil {
			firstErr = err
		}
		return v, found
	}
	integer := func(name string) (int, bool) {
		v, found, err := typedparams.Int(params, name)
		if err != nil && firstErr == nil {
			firstErr = err
		}
		return int(v), found
	}
	p.URI = str(ParamURI)
	p.DestName = str(ParamDestName)
	p.DestXML = str(ParamDestXML)
	p.PersistXML = str(ParamPersistXML)
	p.Bandwidth, _ = ull(ParamBandwidth)
	p.BandwidthPostcopy, _ = ull(ParamBandwidthPostcopy)
	p.GraphicsURI = str(ParamGraphicsURI)
	p.ListenAddress = str(ParamListenAddress)
	p.MigrateDisks = typedparams.Strings(params, ParamMigrateDisks)
	p.DisksPort, _ = integer(ParamDisksPort)
	p.DisksURI = str(ParamDisksURI)
	p.Compression = typedparams.Strings(params, ParamCompression)
	p.CompressionMTLevel, p.HasCompressionMTLevel = integer(ParamCompressionMTLevel)
	p.CompressionMTThreads, p.HasCompressionMTThreads = integer(ParamCompressionMTThreads)
	p.CompressionMTDThreads, p.HasCompressionMTDThreads = integer(ParamCompressionMTDThreads)
	p.CompressionXBZRLECache, p.HasCompressionXBZRLECache = ull(ParamCompressionXBZRLE)
	p.CompressionZlibLevel, p.HasCompressionZlibLevel = integer(ParamCompressionZlibLevel)
	p.CompressionZstdLevel, p.HasCompressionZstdLevel = integer(ParamCompressionZstdLevel)
	p.AutoConvergeInitial, p.HasAutoConvergeInitial = integer(ParamAutoConvergeInitial)
	p.AutoConvergeIncrement, p.HasAutoConvergeIncrement = integer(ParamAutoConvergeIncrement)
	p.ParallelConnections, p.HasParallelConnections = integer(ParamParallelConnections)
	p.TLSDestination = str(ParamTLSDestination)
	p.ConvergenceStall, p.HasConvergenceStall = ull(ParamConvergenceStall)
	if firstErr != nil {
		return nil, firstErr
	}
	return p, nil
}

// TypedParams encodes p for the wire, omitting unset values.
//
// The order is the one libvirt's source daemon uses when it drives the
// destination itself in peer-to-peer mode (qemuMigrationSrcPerformPeer2Peer3):
// destination_xml, destination_name, migrate_uri, bandwidth, graphics_uri,
// listen_address, migrate_disks..., disks_port, disks_uri, then the
// compression/tuning parameters. (In client-managed mode the order on the
// wire is the client's: virsh's own parameters such as bandwidth come first
// and the client library appends destination_xml, migrate_uri and
// destination_name, which is why facts §4.1 show bandwidth first.) Order
// carries no meaning to a receiver: virTypedParamsValidate sorts by name and
// virTypedParamsGet takes the first match.
//
// persistent_xml is included when set, although libvirt's p2p source keeps
// it for its own Perform step; a caller building Prepare3/Finish3 params
// for a destination should clear it first.
func (p *Params) TypedParams() []libvirt.TypedParam {
	var l typedparams.List
	if p.DestXML != "" {
		l.AddString(ParamDestXML, p.DestXML)
	}
	if p.DestName != "" {
		l.AddString(ParamDestName, p.DestName)
	}
	if p.URI != "" {
		l.AddString(ParamURI, p.URI)
	}
	if p.Bandwidth != 0 {
		l.AddULLong(ParamBandwidth, p.Bandwidth)
	}
	if p.GraphicsURI != "" {
		l.AddString(ParamGraphicsURI, p.GraphicsURI)
	}
	if p.ListenAddress != "" {
		l.AddString(ParamListenAddress, p.ListenAddress)
	}
	for _, d := range p.MigrateDisks {
		l.AddString(ParamMigrateDisks, d)
	}
	if p.DisksPort != 0 {
		l.AddInt(ParamDisksPort, int32(p.DisksPort))
	}
	if p.DisksURI != "" {
		l.AddString(ParamDisksURI, p.DisksURI)
	}
	for _, c := range p.Compression {
		l.AddString(ParamCompression, c)
	}
	if p.HasCompressionMTLevel {
		l.AddInt(ParamCompressionMTLevel, int32(p.CompressionMTLevel))
	}
	if p.HasCompressionMTThreads {
		l.AddInt(ParamCompressionMTThreads, int32(p.CompressionMTThreads))
	}
	if p.HasCompressionMTDThreads {
		l.AddInt(ParamCompressionMTDThreads, int32(p.CompressionMTDThreads))
	}
	if p.HasCompressionXBZRLECache {
		l.AddULLong(ParamCompressionXBZRLE, p.CompressionXBZRLECache)
	}
	if p.HasCompressionZlibLevel {
		l.AddInt(ParamCompressionZlibLevel, int32(p.CompressionZlibLevel))
	}
	if p.HasCompressionZstdLevel {
		l.AddInt(ParamCompressionZstdLevel, int32(p.CompressionZstdLevel))
	}
	if p.HasAutoConvergeInitial {
		l.AddInt(ParamAutoConvergeInitial, int32(p.AutoConvergeInitial))
	}
	if p.HasAutoConvergeIncrement {
		l.AddInt(ParamAutoConvergeIncrement, int32(p.AutoConvergeIncrement))
	}
	if p.BandwidthPostcopy != 0 {
		l.AddULLong(ParamBandwidthPostcopy, p.BandwidthPostcopy)
	}
	if p.HasParallelConnections {
		l.AddInt(ParamParallelConnections, int32(p.ParallelConnections))
	}
	if p.TLSDestination != "" {
		l.AddString(ParamTLSDestination, p.TLSDestination)
	}
	if p.PersistXML != "" {
		l.AddString(ParamPersistXML, p.PersistXML)
	}
	return l.Params()
}
