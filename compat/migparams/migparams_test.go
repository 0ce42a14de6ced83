package migparams

import (
	"reflect"
	"strings"
	"testing"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/compat/typedparams"
)

func TestParseEveryParam(t *testing.T) {
	var l typedparams.List
	l.AddString(ParamURI, "tcp:h:49152").AddString(ParamDestName, "other").AddString(ParamDestXML, "<domain/>").
		AddString(ParamPersistXML, "<domain/>").AddULLong(ParamBandwidth, 5).AddULLong(ParamBandwidthPostcopy, 7).
		AddString(ParamGraphicsURI, "spice://h").AddString(ParamListenAddress, "::").
		AddString(ParamMigrateDisks, "vda").AddString(ParamMigrateDisks, "vdb").AddInt(ParamDisksPort, 49153).
		AddString(ParamDisksURI, "unix:/s").AddString(ParamCompression, "xbzrle").AddString(ParamCompression, "mt").
		AddInt(ParamCompressionMTLevel, 0).AddInt(ParamCompressionMTThreads, 2).AddInt(ParamCompressionMTDThreads, 3).
		AddULLong(ParamCompressionXBZRLE, 1<<20).AddInt(ParamAutoConvergeInitial, 20).AddInt(ParamAutoConvergeIncrement, 10).
		AddInt(ParamParallelConnections, 4).AddString(ParamTLSDestination, "h.example").
		AddULLong(ParamConvergenceStall, 30).AddInt(ParamCompressionZlibLevel, 6).AddInt(ParamCompressionZstdLevel, 0)
	p, err := Parse(l.Params())
	if err != nil {
		t.Fatal(err)
	}
	want := &Params{
		URI: "tcp:h:49152", DestName: "other", DestXML: "<domain/>", PersistXML: "<domain/>",
		Bandwidth: 5, BandwidthPostcopy: 7, GraphicsURI: "spice://h", ListenAddress: "::",
		MigrateDisks: []string{"vda", "vdb"}, DisksPort: 49153, DisksURI: "unix:/s",
		Compression: []string{"xbzrle", "mt"}, CompressionMTLevel: 0, CompressionMTThreads: 2,
		CompressionMTDThreads: 3, CompressionXBZRLECache: 1 << 20, AutoConvergeInitial: 20,
		AutoConvergeIncrement: 10, ParallelConnections: 4, TLSDestination: "h.example",
		HasCompressionMTLevel: true, HasCompressionMTThreads: true, HasCompressionMTDThreads: true,
		HasCompressionXBZRLECache: true, HasAutoConvergeInitial: true, HasAutoConvergeIncrement: true,
		HasParallelConnections: true, ConvergenceStall: 30, HasConvergenceStall: true,
		CompressionZlibLevel: 6, HasCompressionZlibLevel: true, CompressionZstdLevel: 0, HasCompressionZstdLevel: true,
	}
	if !reflect.DeepEqual(p, want) {
		t.Fatalf("got %+v\nwant %+v", p, want)
	}
	// Round trip through the wire form, which leaves govirtd's own
	// parameter out (it goes to the destination, maybe a libvirtd).
	want.ConvergenceStall, want.HasConvergenceStall = 0, false
	p2, err := Parse(p.TypedParams())
	if err != nil || !reflect.DeepEqual(p2, want) {
		t.Fatalf("round trip: %v %+v", err, p2)
	}
	if n := len(Accepted); len(l.Params()) != n+2 { // two multiples repeated
		t.Errorf("test covers %d params, accepted list has %d", len(l.Params())-2, n)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		l    *typedparams.List
		code libvirt.ErrorNumber
		msg  string
	}{
		{"unknown", new(typedparams.List).AddString("bogus", "x"), libvirt.ErrArgumentUnsupported,
			"parameter 'bogus' not supported"},
		// Taken from libvirt 9.4 with its type.
		{"zstd level as ullong", new(typedparams.List).AddULLong(ParamCompressionZstdLevel, 1), libvirt.ErrInvalidArg,
			"invalid type 'ullong' for parameter 'compression.zstd.level', expected 'int'"},
		{"bandwidth as int", new(typedparams.List).AddInt(ParamBandwidth, 1), libvirt.ErrInvalidArg,
			"invalid type 'int' for parameter 'bandwidth', expected 'ullong'"},
		{"uri twice", new(typedparams.List).AddString(ParamURI, "a").AddString(ParamURI, "b"), libvirt.ErrInvalidArg,
			"parameter 'migrate_uri' occurs multiple times"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.l.Params())
			le := compat.As(err)
			if err == nil || le.Code != tt.code || le.Detail != tt.msg {
				t.Fatalf("got %v, want %q", err, tt.msg)
			}
		})
	}
}

func TestTypedParamsOrder(t *testing.T) {
	p := &Params{DestXML: "x", DestName: "n", URI: "tcp:h:1", Bandwidth: 3}
	var names []string
	for _, tp := range p.TypedParams() {
		names = append(names, tp.Field)
	}
	if got := strings.Join(names, ","); got != "destination_xml,destination_name,migrate_uri,bandwidth" {
		t.Errorf("order %s", got)
	}
	if got := (&Params{}).TypedParams(); len(got) != 0 {
		t.Errorf("empty params encoded as %v", got)
	}
}

func TestFlags(t *testing.T) {
	if s := (Live | PeerToPeer | 1<<30).String(); s != "VIR_MIGRATE_LIVE|VIR_MIGRATE_PEER2PEER|0x40000000" {
		t.Errorf("String = %s", s)
	}
	if Zerocopy != 1048576 || Offline != 1024 || Unsafe != 512 || NonSharedSynchronousWrites != 1<<18 {
		t.Error("flag values")
	}
	tests := []struct {
		flags Flags
		code  libvirt.ErrorNumber
		msg   string
	}{
		{Live, 0, ""},
		{0x101, 0, ""},
		{Live | PeerToPeer | Tunnelled, 0, ""},
		{0x508, 0, ""}, // offline + persistent as virsh sends it
		{Offline | PersistDest | Live, 0, ""},
		{Live | PersistDest | UndefineSource | ChangeProtection | Paused | Unsafe | AbortOnError | AutoConverge, 0, ""},
		{Live | Tunnelled, libvirt.ErrInvalidArg, "cannot perform tunnelled migration without using peer2peer flag"},
		{NonSharedDisk | NonSharedInc, libvirt.ErrInvalidArg,
			"Flags 'VIR_MIGRATE_NON_SHARED_DISK' and 'VIR_MIGRATE_NON_SHARED_INC' are mutually exclusive"},
		{Offline, libvirt.ErrOperationInvalid, "offline migration must be specified with the persistent flag set"},
		{Offline | PersistDest | NonSharedDisk, libvirt.ErrOperationInvalid, "offline migration cannot handle non-shared storage"},
		{Offline | PersistDest | PeerToPeer | Tunnelled, libvirt.ErrOperationInvalid, "tunnelled offline migration does not make sense"},
		{Postcopy, libvirt.ErrArgumentUnsupported, "post-copy migration is not supported with non-live or paused migration"},
		{Postcopy | Live | PeerToPeer | Tunnelled, libvirt.ErrArgumentUnsupported, "post-copy is not supported with tunnelled migration"},
		{Zerocopy | Live, libvirt.ErrOperationInvalid, "zero-copy is only available for parallel migration"},
		{NonSharedDisk | Live | PeerToPeer | Tunnelled, libvirt.ErrOperationUnsupported,
			"migration of non-shared storage is not supported with tunnelled migration and this QEMU"},
		{Postcopy | Live, 0, ""},
		{Postcopy | Live | PeerToPeer, 0, ""},
		{Postcopy | PostcopyResume | Live, 0, ""},
		{NonSharedDisk | Live, 0, ""},
		{NonSharedInc | Live | PeerToPeer | NonSharedSynchronousWrites, 0, ""},
		{Compressed | Live, 0, ""},
		{Parallel | Live | PeerToPeer, 0, ""},
		{Parallel | Live | PeerToPeer | Tunnelled, libvirt.ErrArgumentUnsupported, "parallel migration is not supported with tunnelled migration by govirtd"},
		{TLS | Live, 0, ""},
		{TLS | Live | PeerToPeer | Tunnelled, libvirt.ErrArgumentUnsupported, "TLS migration is not supported with tunnelled migration by govirtd: use a qemu+tls:// connection"},
		{TLS | Live | NonSharedDisk, 0, ""},
		{Parallel | Zerocopy | Live, libvirt.ErrArgumentUnsupported, "migration flag VIR_MIGRATE_ZEROCOPY is not supported by govirtd"},
		{RDMAPinAll, libvirt.ErrArgumentUnsupported, "migration flag VIR_MIGRATE_RDMA_PIN_ALL is not supported by govirtd"},
	}
	for _, tt := range tests {
		err := CheckFlags(tt.flags)
		if tt.code == 0 {
			if err != nil {
				t.Errorf("%v: %v", tt.flags, err)
			}
			continue
		}
		le := compat.As(err)
		if err == nil || le.Code != tt.code || le.Detail != tt.msg {
			t.Errorf("%v: got %v, want %q", tt.flags, err, tt.msg)
		}
	}
	if err := CheckKnown(Live|1<<25, "qemuDomainMigrateBegin3Params"); compat.As(err).Detail !=
		"qemuDomainMigrateBegin3Params: unsupported flags (0x2000000)" {
		t.Errorf("CheckKnown: %v", err)
	}
	if CheckKnown(Known, "f") != nil {
		t.Error("CheckKnown refused a known flag")
	}
	if (Live | AbortOnError | AutoConverge | PeerToPeer).DestFlags() != Live|PeerToPeer {
		t.Error("DestFlags")
	}
}

func TestJobStatsOrder(t *testing.T) {
	names := func(ps []libvirt.TypedParam) string {
		var n []string
		for _, p := range ps {
			n = append(n, p.Field)
		}
		return strings.Join(n, ",")
	}
	// A completed migration as in facts §5 (JOB_COMPLETED).
	s := &JobStats{
		Operation: OperationMigrationOut, TimeElapsed: 455, TimeDelta: 3, TimeDeltaSet: true,
		Downtime: 17, DowntimeSet: true, SetupTime: 3, SetupTimeSet: true,
		MemoryBPS: 47767588, MemoryDuplicateSet: true, MemoryPageSize: 4096,
	}
	ps := s.TypedParams()
	want := "operation,time_elapsed,time_elapsed_net,downtime,downtime_net,setup_time," +
		"data_total,data_processed,data_remaining,memory_total,memory_processed,memory_remaining," +
		"memory_bps,memory_constant,memory_normal,memory_normal_bytes,memory_dirty_rate," +
		"memory_iteration,memory_postcopy_requests,memory_page_size,disk_total,disk_processed,disk_remaining"
	if got := names(ps); got != want {
		t.Errorf("order\n got %s\nwant %s", got, want)
	}
	if ps[0].Value.D != uint32(typedparams.TypeInt) || ps[1].Value.D != uint32(typedparams.TypeULLong) {
		t.Error("types")
	}
	if v, _, _ := typedparams.Uint64(ps, JobTimeElapsedNet); v != 452 {
		t.Errorf("time_elapsed_net = %d", v)
	}
	if v, _, _ := typedparams.Uint64(ps, JobDowntimeNet); v != 14 {
		t.Errorf("downtime_net = %d", v)
	}
	// Unknown downtime/setup and zero rates are omitted; throttle is INT.
	s = &JobStats{Operation: OperationMigrationOut, AutoConvergeThrottle: 20, XBZRLESet: true, DiskBPS: 1}
	got := names(s.TypedParams())
	if strings.Contains(got, "downtime") || strings.Contains(got, "setup_time") || strings.Contains(got, "memory_bps") ||
		strings.Contains(got, "memory_page_size") || strings.Contains(got, "memory_constant") {
		t.Errorf("unknown values present: %s", got)
	}
	if !strings.HasSuffix(got, "disk_bps,compression_cache,compression_bytes,compression_pages,compression_cache_misses,compression_overflow,auto_converge_throttle") {
		t.Errorf("tail: %s", got)
	}
	ps = s.TypedParams()
	if ps[len(ps)-1].Value.D != uint32(typedparams.TypeInt) {
		t.Error("auto_converge_throttle must be INT")
	}
	if got := names((&JobStats{SaveDump: true}).TypedParams()); strings.Contains(got, "disk_total") {
		t.Errorf("save/dump stats include disk: %s", got)
	}
}

// TuningFor is qemuMigrationParamsFromFlags' compression and multifd part:
// libvirt's checks, and each side's share of the parameters.
func TestTuningFor(t *testing.T) {
	src, err := TuningFor(Live|Compressed, &Params{}, SourceSide)
	if err != nil || !src.XBZRLE || src.Compress || src.Multifd {
		t.Errorf("--compressed: %+v, %v", src, err)
	}
	p := &Params{Compression: []string{"mt", "xbzrle"}, CompressionMTLevel: 3, HasCompressionMTLevel: true,
		CompressionMTDThreads: 2, HasCompressionMTDThreads: true, CompressionXBZRLECache: 1 << 20, HasCompressionXBZRLECache: true,
		ParallelConnections: 4, HasParallelConnections: true}
	src, err = TuningFor(Live|Compressed|Parallel, p, SourceSide)
	if err != nil || !src.XBZRLE || !src.Compress || !src.Multifd || *src.CompressLevel != 3 || *src.XBZRLECacheSize != 1<<20 ||
		src.DecompressThreads != nil || *src.MultifdChannels != 4 {
		t.Errorf("source: %+v, %v", src, err)
	}
	dst, err := TuningFor(Live|Compressed|Parallel, p, DestinationSide)
	if err != nil || dst.CompressLevel != nil || dst.XBZRLECacheSize != nil || *dst.DecompressThreads != 2 || *dst.MultifdChannels != 4 {
		t.Errorf("destination: %+v, %v", dst, err)
	}
	// zstd with --parallel (libvirt 9.4): the method and its level on both
	// sides, no xbzrle.
	p = &Params{Compression: []string{"zstd"}, CompressionZstdLevel: 3, HasCompressionZstdLevel: true}
	for _, side := range []Side{SourceSide, DestinationSide} {
		got, err := TuningFor(Live|Compressed|Parallel, p, side)
		if err != nil || !got.Multifd || got.XBZRLE || got.MultifdCompression == nil || *got.MultifdCompression != "zstd" ||
			got.MultifdZstdLevel == nil || *got.MultifdZstdLevel != 3 || got.MultifdZlibLevel != nil {
			t.Errorf("zstd, side %d: %+v, %v", side, got, err)
		}
	}
	for _, c := range []struct {
		flags Flags
		p     Params
		msg   string
	}{
		{Live, Params{ParallelConnections: 2, HasParallelConnections: true}, "Turn parallel migration on to tune it"},
		{Live | Compressed, Params{Compression: []string{"lz4"}}, "Unsupported compression method 'lz4'"},
		{Live | Compressed, Params{Compression: []string{"zstd"}}, "Compression method 'zstd' is only supported with parallel migration"},
		{Live | Parallel, Params{Compression: []string{"zstd", "zlib"}}, "Only one compression method could be specified with parallel compression"},
		{Live | Parallel, Params{Compression: []string{"zstd"}, CompressionZlibLevel: 1, HasCompressionZlibLevel: true}, "Turn zlib compression on to tune it"},
		{Live | Parallel, Params{Compression: []string{"zlib"}, CompressionZstdLevel: 1, HasCompressionZstdLevel: true}, "Turn zstd compression on to tune it"},
		{Live | Compressed, Params{Compression: []string{"mt", "mt"}}, "Compression method 'mt' is specified twice"},
		{Live | Compressed, Params{Compression: []string{"xbzrle"}, CompressionMTThreads: 2, HasCompressionMTThreads: true}, "Turn multithread compression on to tune it"},
		{Live | Compressed, Params{CompressionXBZRLECache: 1, HasCompressionXBZRLECache: true}, "Turn xbzrle compression on to tune it"},
	} {
		_, err := TuningFor(c.flags, &c.p, SourceSide)
		if le := compat.As(err); err == nil || le.Code != libvirt.ErrInvalidArg || le.Detail != c.msg {
			t.Errorf("%+v: %v, want %q", c.p, err, c.msg)
		}
	}
}
