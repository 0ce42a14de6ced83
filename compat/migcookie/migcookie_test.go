package migcookie

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
)

// The captures' cookies (libvirtd 9.0, managed live migration vm -> hostb)
// with their lengths on the wire, NUL included.
var captured = map[string]int{
	"begin3.cookie":   916,
	"prepare3.cookie": 690,
	"perform3.cookie": 1119,
	"finish3.cookie":  1144,

	"begin3-offline.cookie":      423,
	"prepare3-offline.cookie":    197,
	"finish3-offline.cookie":     197,
	"perform3-persistent.cookie": 1996,

	// The p2p migration back (hostb -> vm).
	"p2p-back-begin3.cookie":   919,
	"p2p-back-prepare3.cookie": 687,
	"p2p-back-perform3.cookie": 1123,
	"p2p-back-finish3.cookie":  1141,
}

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func roundTrip(t *testing.T, in, want []byte) *Cookie {
	t.Helper()
	c, err := Parse(in)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	got, err := c.Marshal()
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("Marshal differs from the original:\n got (%d B):\n%s\nwant (%d B):\n%s", len(got), got, len(want), want)
	}
	return c
}

func TestCapturedRoundTrip(t *testing.T) {
	for name, size := range captured {
		t.Run(name, func(t *testing.T) {
			in := readFile(t, name)
			if len(in) != size || in[len(in)-1] != 0 {
				t.Fatalf("testdata: %d bytes, want %d ending in NUL", len(in), size)
			}
			roundTrip(t, in, in)
			// Without the NUL too.
			roundTrip(t, in[:len(in)-1], in)
		})
	}
}

// libvirt's own test cases (tests/qemumigrationcookiexmldata): every file
// must round-trip, being libvirt's output format.
func TestLibvirtTestData(t *testing.T) {
	files, err := filepath.Glob("testdata/libvirt/*.xml")
	if err != nil || len(files) == 0 {
		t.Fatal("no libvirt test data", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			in := readFile(t, filepath.Join("libvirt", filepath.Base(f)))
			roundTrip(t, in, append(bytes.Clone(in), 0))
		})
	}
}

func TestParseFull(t *testing.T) {
	c, err := Parse(readFile(t, "libvirt/full-xml2xml-in.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Features, []string{FeatureGraphics, FeatureMemoryHotplug}) {
		t.Errorf("Features = %q", c.Features)
	}
	if *c.LockState != (LockState{Driver: "blurb", Leases: "leastest"}) {
		t.Errorf("LockState = %+v", c.LockState)
	}
	if c.Persistent == nil || c.Persistent.Name != "upstream" || c.Persistent.Type != "kvm" {
		t.Errorf("Persistent = %+v", c.Persistent)
	}
	if want := (&NBD{Port: 456, Disks: []NBDDisk{{"vda", 123}, {"vdb", 1235}}}); !reflect.DeepEqual(c.NBD, want) {
		t.Errorf("NBD = %+v", c.NBD)
	}
	s := c.Stats
	if s == nil || *s.Delta != 7654 || *s.Downtime != 11 || *s.SetupTime != 12 ||
		*s.Pages != (PageStats{51, 52, 53}) || *s.Compression != (CompressionStats{131, 132, 133, 134, 135}) ||
		s.AutoConvergeThrottle != 14 || s.MemoryPageSize != 9 {
		t.Errorf("Stats = %+v", s)
	}
	if c.CPU == nil || c.CPU.Mode != "host-passthrough" || c.CPU.Migratable != "on" {
		t.Errorf("CPU = %+v", c.CPU)
	}
	if want := []MigrationCap{{"xbzrle", true}, {"postcopy-ram", false}}; !reflect.DeepEqual(c.Caps, want) {
		t.Errorf("Caps = %+v", c.Caps)
	}
	if !strings.Contains(string(c.Graphics), "tlsPort='321'") || !strings.Contains(string(c.Network), "midonet") ||
		c.AllowReboot != "<allowReboot value='yes'/>\n" {
		t.Errorf("raw elements: %q %q %q", c.Graphics, c.Network, c.AllowReboot)
	}
}

func TestParseEmptyCaps(t *testing.T) {
	c, err := Parse(readFile(t, "libvirt/basic-xml2xml-out.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Caps == nil || len(c.Caps) != 0 {
		t.Errorf("Caps = %#v, want empty and non-nil", c.Caps)
	}
	c, _ = Parse(readFile(t, "libvirt/basic-xml2xml-in.xml"))
	if c.Caps != nil {
		t.Errorf("Caps = %#v, want nil", c.Caps)
	}
}

func TestParseEmpty(t *testing.T) {
	c, err := Parse(nil)
	if c != nil || err != nil {
		t.Errorf("Parse(nil) = %v, %v; want nil, nil", c, err)
	}
	if _, err := Parse([]byte{0}); err == nil {
		t.Error("Parse(NUL) succeeded")
	}
}

var (
	srcID = Identity{Name: "demo", UUID: "92319d98-2b5c-459d-b3f3-d70c7e23ef61", Hostname: "vm", HostUUID: "456bc1ae-d7c8-4b9b-88a6-13ce35890025"}
	dstID = Identity{Name: "demo", UUID: "92319d98-2b5c-459d-b3f3-d70c7e23ef61", Hostname: "hostb", HostUUID: "11111111-2222-3333-4444-555555555555"}
)

func u64(v uint64) *uint64 { return &v }

// performStats are the captured Perform cookie's statistics.
func performStats() *Statistics {
	return &Statistics{
		Started: 1795674530182, Stopped: 1795674530373, Sent: 1795674530381,
		TimeElapsed: 199, Downtime: u64(8), SetupTime: u64(1),
		MemoryTotal: 134610944, MemoryProcessed: 725781, MemoryRemaining: 0, MemoryBPS: 47767588,
		Pages:           &PageStats{Constant: 32759, Normal: 105, NormalBytes: 430080},
		MemoryIteration: 2, MemoryPageSize: 4096,
	}
}

func expect(t *testing.T, c *Cookie, golden string) {
	t.Helper()
	got, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if want := readFile(t, golden); !bytes.Equal(got, want) {
		t.Errorf("%s: got (%d B):\n%s\nwant (%d B):\n%s", golden, len(got), got, len(want), want)
	}
}

// The builders, fed what the hosts knew, make the captured cookies.
func TestBuilders(t *testing.T) {
	cpu := &libvirtxml.DomainCPU{
		Mode: "custom", Match: "exact", Check: "full",
		Model:    &libvirtxml.DomainCPUModel{Fallback: "forbid", Value: "qemu64"},
		Features: []libvirtxml.DomainCPUFeature{{Policy: "require", Name: "hypervisor"}, {Policy: "require", Name: "lahf_lm"}},
	}
	expect(t, ForBegin(srcID, cpu, Caps(Source, KnownCaps())), "begin3.cookie")
	expect(t, ForBegin(srcID, cpu, nil), "begin3-offline.cookie")
	expect(t, ForPrepare(dstID, Caps(Destination, KnownCaps())), "prepare3.cookie")
	expect(t, ForPrepare(dstID, nil), "prepare3-offline.cookie")
	expect(t, New(dstID), "finish3-offline.cookie")
	expect(t, ForPerform(srcID, performStats()), "perform3.cookie")

	// Finish: the Perform cookie arrived 1 ms after it was sent, the
	// Finish cookie was made 3 ms later.
	src := performStats()
	fin := src.AtDestination(src.Sent+1, src.Sent+4)
	expect(t, ForFinish(dstID, fin), "finish3.cookie")
	if src.Delta != nil || *src.Downtime != 8 {
		t.Error("AtDestination changed its receiver")
	}

	// --persistent: the definition formatted from libvirtxml.
	golden, _ := Parse(readFile(t, "perform3-persistent.cookie"))
	def := &libvirtxml.Domain{}
	if err := def.Unmarshal(mustMarshal(t, golden.Persistent)); err != nil {
		t.Fatal(err)
	}
	p := ForPerform(srcID, golden.Stats)
	p.SetPersistent(def)
	expect(t, p, "perform3-persistent.cookie")
}

func mustMarshal(t *testing.T, d *libvirtxml.Domain) string {
	t.Helper()
	s, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A parsed definition that is changed is printed from the change, not
// from the text it was read from.
func TestPersistentChanged(t *testing.T) {
	c, err := Parse(readFile(t, "perform3-persistent.cookie"))
	if err != nil {
		t.Fatal(err)
	}
	c.Persistent.Name = "renamed"
	out, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "    <name>renamed</name>\n") {
		t.Errorf("change lost:\n%s", out)
	}
}

func TestAddFeatureOrder(t *testing.T) {
	c := &Cookie{}
	c.AddFeature(FeaturePersistent)
	c.AddFeature(FeatureCPUHotplug)
	c.AddFeature(FeatureLockState)
	c.AddFeature(FeaturePersistent)
	c.AddFeature(FeatureMemoryHotplug)
	want := []string{FeatureLockState, FeaturePersistent, FeatureMemoryHotplug, FeatureCPUHotplug}
	if !reflect.DeepEqual(c.Features, want) {
		t.Errorf("Features = %q, want %q", c.Features, want)
	}
}

func TestGovirtdExtension(t *testing.T) {
	c := ForPrepare(dstID, Caps(Destination, KnownCaps()))
	c.Govirtd = &Extension{URI: "qemu+tcp://127.0.0.3:16509/system"}
	out, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := "  </capabilities>\n  <govirtd>\n    <uri>qemu+tcp://127.0.0.3:16509/system</uri>\n  </govirtd>\n</qemu-migration>\n\x00"
	if !strings.HasSuffix(string(out), want) {
		t.Errorf("got:\n%s", out)
	}
	back, err := Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	if back.Govirtd == nil || back.Govirtd.URI != c.Govirtd.URI {
		t.Errorf("Govirtd = %+v", back.Govirtd)
	}
	// Unknown elements are ignored, as libvirt ignores <govirtd>.
	odd := strings.Replace(string(out), "<govirtd>", "<other a='1'><x/></other><govirtd>", 1)
	if _, err := Parse([]byte(odd)); err != nil {
		t.Errorf("unknown element refused: %v", err)
	}
}

func wantErr(t *testing.T, err error, code libvirt.ErrorNumber, msg string) {
	t.Helper()
	le, ok := err.(*compat.Error)
	if !ok {
		t.Fatalf("error %v (%T), want a libvirt error", err, err)
	}
	if le.Code != code || le.Domain != compat.FromQEMU || le.Message() != msg {
		t.Errorf("error = code %d domain %d %q\n want code %d domain %d %q", le.Code, le.Domain, le.Message(), code, compat.FromQEMU, msg)
	}
}

func TestParseErrors(t *testing.T) {
	base := string(readFile(t, "prepare3.cookie"))
	cases := []struct {
		name, in string
		code     libvirt.ErrorNumber
		msg      string
	}{
		{"malformed", "<qemu-migration><name>demo</qemu-migration>\x00", libvirt.ErrXMLDetail,
			"(qemu_migration_cookie):1: Opening and ending tag mismatch: name and qemu-migration"},
		{"truncated", base[:100], libvirt.ErrXMLDetail,
			"(qemu_migration_cookie):4: Premature end of data in tag qemu-migration"},
		{"no name", strings.Replace(base, "<name>demo</name>", "", 1), libvirt.ErrInternalError,
			"internal error: missing name element in migration data"},
		{"empty name", strings.Replace(base, "<name>demo</name>", "<name/>", 1), libvirt.ErrInternalError,
			"internal error: missing name element in migration data"},
		{"no uuid", strings.Replace(base, "<uuid>92319d98-2b5c-459d-b3f3-d70c7e23ef61</uuid>", "", 1), libvirt.ErrInternalError,
			"internal error: missing uuid element in migration data"},
		{"no hostname", strings.Replace(base, "<hostname>hostb</hostname>", "", 1), libvirt.ErrInternalError,
			"internal error: missing hostname element in migration data"},
		{"no hostuuid", strings.Replace(base, "<hostuuid>11111111-2222-3333-4444-555555555555</hostuuid>", "", 1), libvirt.ErrInternalError,
			"internal error: missing hostuuid element in migration data"},
		{"bad hostuuid", strings.Replace(base, "11111111-2222-3333-4444-555555555555", "1111-xyz", 1), libvirt.ErrInternalError,
			"internal error: malformed hostuuid element in migration data"},
		{"feature without name", strings.Replace(base, "<capabilities>", "<feature/><capabilities>", 1), libvirt.ErrInternalError,
			"internal error: missing feature name"},
		{"cap without name", strings.Replace(base, "<cap name='xbzrle' auto='no'/>", "<cap auto='no'/>", 1), libvirt.ErrInternalError,
			"internal error: missing migration capability name"},
		{"lockstate without driver", strings.Replace(base, "<capabilities>", "<lockstate><leases/></lockstate><capabilities>", 1), libvirt.ErrInternalError,
			"internal error: Missing lock driver name in migration cookie"},
		{"two domains", strings.Replace(base, "<capabilities>", "<domain/><domain/><capabilities>", 1), libvirt.ErrInternalError,
			"internal error: Too many domain elements in migration cookie"},
		{"nbd port", strings.Replace(base, "<capabilities>", "<nbd port='x'/><capabilities>", 1), libvirt.ErrInternalError,
			"internal error: Malformed nbd port 'x'"},
		{"nbd capacity", strings.Replace(base, "<capabilities>", "<nbd><disk target='vda'/></nbd><capabilities>", 1), libvirt.ErrInternalError,
			"internal error: Malformed disk capacity: '<null>'"},
		{"bitmaps", strings.Replace(base, "<capabilities>", "<blockDirtyBitmaps><disk target='vda'><bitmap name='a'/></disk></blockDirtyBitmaps><capabilities>", 1), libvirt.ErrInternalError,
			"internal error: malformed <blockDirtyBitmaps> in migration cookie"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.in))
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", c)
			}
			wantErr(t, err, tc.code, tc.msg)
		})
	}
}

func TestChecks(t *testing.T) {
	begin, err := Parse(readFile(t, "begin3.cookie"))
	if err != nil {
		t.Fatal(err)
	}
	// What the destination's Prepare accepts.
	prepare := []string{FeatureLockState, FeatureNBD, FeatureMemoryHotplug, FeatureCPUHotplug, FeatureCPU, FeatureCapabilities, FeatureBlockDirtyBitmaps}
	if err := begin.Check("demo", srcID.UUID, dstID.HostUUID, prepare); err != nil {
		t.Errorf("Check: %v", err)
	}

	wantErr(t, begin.CheckHost("456BC1AE-D7C8-4B9B-88A6-13CE35890025"), libvirt.ErrInternalError,
		"internal error: Attempt to migrate guest to the same host 456bc1ae-d7c8-4b9b-88a6-13ce35890025")
	wantErr(t, begin.CheckDomain("other", srcID.UUID), libvirt.ErrInternalError,
		"internal error: Incoming cookie data had unexpected name demo vs other")
	wantErr(t, begin.CheckDomain("demo", "00000000-0000-0000-0000-000000000001"), libvirt.ErrInternalError,
		"internal error: Incoming cookie data had unexpected UUID 92319d98-2b5c-459d-b3f3-d70c7e23ef61 vs 00000000-0000-0000-0000-000000000001")
	wantErr(t, begin.CheckMandatory([]string{FeatureCPU}), libvirt.ErrInternalError,
		"internal error: Unsupported migration cookie feature lockstate")

	begin.Features = append(begin.Features, "teleport")
	wantErr(t, begin.CheckMandatory(prepare), libvirt.ErrInternalError,
		"internal error: Unknown migration cookie feature teleport")
	// Check reports the first failure in libvirt's order.
	wantErr(t, begin.Check("demo", srcID.UUID, srcID.HostUUID, nil), libvirt.ErrInternalError,
		"internal error: Attempt to migrate guest to the same host 456bc1ae-d7c8-4b9b-88a6-13ce35890025")

	wantErr(t, CheckTerminated([]byte("<qemu-migration/>")), libvirt.ErrInternalError,
		"internal error: Migration cookie was not NULL terminated")
	if err := CheckTerminated(nil); err != nil {
		t.Error(err)
	}
}

// Statistics values libvirt cannot read are ignored, not errors.
func TestStatsLenient(t *testing.T) {
	in := strings.NewReplacer("<downtime>8</downtime>", "<downtime>x</downtime>",
		"<sent>1795674530381</sent>", "<sent> +1795674530381</sent>",
		"<memory_constant>32759</memory_constant>", "").Replace(string(readFile(t, "perform3.cookie")))
	c, err := Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if c.Stats.Downtime != nil || c.Stats.Pages != nil || c.Stats.Sent != 1795674530381 {
		t.Errorf("Stats = %+v", c.Stats)
	}
}

func FuzzParse(f *testing.F) {
	for name := range captured {
		f.Add(readFile(f, name))
	}
	files, _ := filepath.Glob("testdata/libvirt/*.xml")
	for _, p := range files {
		f.Add(readFile(f, filepath.Join("libvirt", filepath.Base(p))))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil || c == nil {
			return
		}
		out, err := c.Marshal()
		if err != nil {
			return // e.g. a <domain> libvirtxml reads but cannot print
		}
		c2, err := Parse(out)
		if err != nil {
			t.Fatalf("re-parse: %v\n%q", err, out)
		}
		if !reflect.DeepEqual(c, c2) {
			t.Fatalf("re-parsed cookie differs:\n%+v\n%+v\n%q", c, c2, out)
		}
		out2, err := c2.Marshal()
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("second Marshal differs (%v):\n%q\n%q", err, out, out2)
		}
	})
}
