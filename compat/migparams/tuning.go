package migparams

import (
	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
)

// Tuning is what compression and parallel migration ask of one side's
// QEMU: the migration capabilities to turn on and the parameters to set
// (nil: leave QEMU's default), as libvirt 9.0's qemuMigrationParamsFromFlags
// and qemuMigrationParamsSetCompression derive them.
type Tuning struct {
	// XBZRLE, Compress (multi-threaded compression) and Multifd are the
	// capabilities of those names.
	XBZRLE, Compress, Multifd bool
	// Postcopy is the postcopy-ram capability (VIR_MIGRATE_POSTCOPY): the
	// migration may switch to post-copy, which only the client decides
	// (virDomainMigrateStartPostCopy).
	Postcopy bool

	XBZRLECacheSize   *int64 // bytes (source)
	CompressLevel     *int64 // source
	CompressThreads   *int64 // source
	DecompressThreads *int64 // destination
	MultifdChannels   *int64 // both
	// MultifdCompression is zlib or zstd (both sides), with its level.
	MultifdCompression *string
	MultifdZlibLevel   *int64
	MultifdZstdLevel   *int64
	// PostcopyBandwidth is max-postcopy-bandwidth in bytes/s (source,
	// bandwidth.postcopy); nil leaves QEMU's, 0 there means the precopy
	// limit.
	PostcopyBandwidth *int64
}

// Side is the host a Tuning is for.
type Side int

// The two sides.
const (
	SourceSide Side = iota
	DestinationSide
)

// TuningFor checks --compressed, --comp-methods, --comp-* and --parallel*
// as libvirt 9.0 does and returns one side's settings. libvirt 9.0 knows
// the methods xbzrle and mt; VIR_MIGRATE_COMPRESSED without a method means
// xbzrle. The multifd methods zlib and zstd, and their levels, are taken
// from libvirt 9.4 with its checks (only with --parallel, only one of
// them); 9.4's refusal of xbzrle and mt with --parallel is not, as 9.0
// accepts those.
func TuningFor(flags Flags, p *Params, side Side) (Tuning, error) {
	var t Tuning
	arg := func(format string, args ...any) error {
		return compat.Errorf(libvirt.ErrInvalidArg, compat.FromQEMU, format, args...)
	}
	if p.HasParallelConnections && flags&Parallel == 0 {
		return t, arg("Turn parallel migration on to tune it")
	}
	seen := map[string]bool{}
	var multifdMethod string
	for _, m := range p.Compression {
		switch m {
		case "xbzrle", "mt", "zlib", "zstd":
		default:
			return t, arg("Unsupported compression method '%s'", m)
		}
		if seen[m] {
			return t, arg("Compression method '%s' is specified twice", m)
		}
		if m == "zlib" || m == "zstd" {
			if flags&Parallel == 0 {
				return t, arg("Compression method '%s' is only supported with parallel migration", m)
			}
			if multifdMethod != "" {
				return t, arg("Only one compression method could be specified with parallel compression")
			}
			multifdMethod = m
		}
		seen[m] = true
	}
	if p.HasCompressionZlibLevel && !seen["zlib"] {
		return t, arg("Turn zlib compression on to tune it")
	}
	if p.HasCompressionZstdLevel && !seen["zstd"] {
		return t, arg("Turn zstd compression on to tune it")
	}
	if (p.HasCompressionMTLevel || p.HasCompressionMTThreads || p.HasCompressionMTDThreads) && !seen["mt"] {
		return t, arg("Turn multithread compression on to tune it")
	}
	if p.HasCompressionXBZRLECache && !seen["xbzrle"] {
		return t, arg("Turn xbzrle compression on to tune it")
	}
	if len(seen) == 0 && flags&Compressed != 0 {
		seen["xbzrle"] = true
	}
	t.XBZRLE, t.Compress, t.Multifd = seen["xbzrle"], seen["mt"], flags&Parallel != 0
	t.Postcopy = flags&Postcopy != 0
	i64 := func(v int64) *int64 { return &v }
	if side == SourceSide {
		if p.HasCompressionXBZRLECache {
			t.XBZRLECacheSize = i64(int64(p.CompressionXBZRLECache))
		}
		if p.HasCompressionMTLevel {
			t.CompressLevel = i64(int64(p.CompressionMTLevel))
		}
		if p.HasCompressionMTThreads {
			t.CompressThreads = i64(int64(p.CompressionMTThreads))
		}
		if p.BandwidthPostcopy != 0 {
			t.PostcopyBandwidth = i64(int64(p.BandwidthPostcopy) << 20)
		}
	} else if p.HasCompressionMTDThreads {
		t.DecompressThreads = i64(int64(p.CompressionMTDThreads))
	}
	if p.HasParallelConnections {
		t.MultifdChannels = i64(int64(p.ParallelConnections))
	}
	if multifdMethod != "" {
		t.MultifdCompression = &multifdMethod
	}
	if p.HasCompressionZlibLevel {
		t.MultifdZlibLevel = i64(int64(p.CompressionZlibLevel))
	}
	if p.HasCompressionZstdLevel {
		t.MultifdZstdLevel = i64(int64(p.CompressionZstdLevel))
	}
	return t, nil
}
