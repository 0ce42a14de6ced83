package storage

import (
	"path/filepath"
	"testing"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
)

// notLibvirt reports an error a client would see as something other than
// a libvirt error of the driver's making.
func notLibvirt(err error) bool {
	le := compat.As(err)
	return le.Err != nil && le.Code == libvirt.ErrInternalError && le.Domain == compat.FromNone
}

// FuzzPoolXML feeds client XML to pool define: it must never panic,
// must answer bad input with a libvirt error, and a pool it accepts must
// print and parse back to the same definition. Definitions only write
// the temporary config directory; no target is touched.
func FuzzPoolXML(f *testing.F) {
	for _, s := range []string{
		"<pool type='dir'><name>p</name><target><path>/var/lib/x</path></target></pool>",
		"<pool type='dir'><name>p</name><uuid>c7a5fdbd-cdaf-9455-926a-d65c16db1809</uuid><target><path>/a//b/</path><permissions><mode>0755</mode><owner>107</owner><group>-1</group><label>x&amp;y</label></permissions></target></pool>",
		"<pool type='fs'><name>f</name><source><device path='/dev/sda1'/></source><target><path>/mnt</path></target></pool>",
		"<pool type='dir'><name>a b</name><target><path>/p q</path></target></pool>",
		"<pool type='dir'><name>p</name></pool>",
		"<pool/>", "<pool", "", "<volume/>",
	} {
		f.Add(s)
	}
	e := &env{t: &testing.T{}, cfg: filepath.Join(f.TempDir(), "storage")}
	d, err := New(e.cfg, quiet())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		p, err := d.StoragePoolDefineXML(ctx, doc, 0)
		if err != nil {
			if notLibvirt(err) {
				t.Fatalf("not a libvirt error: %v", err)
			}
			return
		}
		defer func() {
			if err := d.StoragePoolUndefine(ctx, p); err != nil {
				t.Fatalf("undefine: %v", err)
			}
		}()
		out, err := d.StoragePoolGetXMLDesc(ctx, p, 0)
		if err != nil {
			t.Fatal(err)
		}
		d.mu.Lock()
		def := *d.pools[p.Name].def
		d.mu.Unlock()
		back, err := parsePool(out)
		if err != nil {
			t.Fatalf("reparse of %q: %v", out, err)
		}
		if *back != def {
			t.Fatalf("round trip: %+v became %+v", def, *back)
		}
		// And through the saved file, as a restarted daemon reads it.
		d2, err := New(e.cfg, quiet())
		if err != nil {
			t.Fatal(err)
		}
		d2.mu.Lock()
		saved, ok := d2.pools[p.Name]
		d2.mu.Unlock()
		if !ok || *saved.def != def {
			t.Fatalf("saved definition of %q not loaded back", p.Name)
		}
	})
}

// FuzzVolumeXML feeds client XML to volume create in a temporary pool:
// no panic, libvirt errors only, and a volume it creates reads back with
// its name, format and capacity. Volumes of more than 1 MiB and backing
// stores (paths outside the pool) are only parsed.
func FuzzVolumeXML(f *testing.F) {
	for _, s := range []string{
		"<volume><name>v</name><capacity unit='KiB'>64</capacity></volume>",
		"<volume><name>q</name><capacity>65536</capacity><allocation>0</allocation><target><format type='qcow2'/><permissions><mode>0644</mode></permissions></target></volume>",
		"<volume type='file'><name>b</name><target><format type='qcow2'/></target><backingStore><path>/x</path><format type='raw'/></backingStore></volume>",
		"<volume><name>x</name><capacity unit='EB'>9</capacity></volume>",
		"<volume><name>a/b</name><capacity>1</capacity></volume>",
		"<volume><name>v</name><capacity>1</capacity><target><format type='vmdk'/></target></volume>",
		"<volume/>", "<volume", "", "<pool/>",
	} {
		f.Add(s)
	}
	e := &env{t: &testing.T{}, cfg: filepath.Join(f.TempDir(), "storage"), root: f.TempDir()}
	d, err := New(e.cfg, quiet())
	if err != nil {
		f.Fatal(err)
	}
	e.d = d
	p, err := d.StoragePoolCreateXML(ctx, poolXML("fuzz", filepath.Join(e.root, "fuzz"), ""), libvirt.StoragePoolCreateWithBuild)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		req, err := parseVol(doc, true)
		if err != nil {
			if notLibvirt(err) {
				t.Fatalf("not a libvirt error: %v", err)
			}
			return
		}
		if req.Capacity > 1<<20 || req.Allocation > 1<<20 || req.BackingPath != "" {
			return
		}
		v, err := d.StorageVolCreateXML(ctx, p, doc, 0)
		if err != nil {
			if notLibvirt(err) {
				t.Fatalf("not a libvirt error: %v", err)
			}
			return
		}
		defer func() {
			if err := d.StorageVolDelete(ctx, v, 0); err != nil {
				t.Fatalf("delete: %v", err)
			}
		}()
		out, err := d.StorageVolGetXMLDesc(ctx, v, 0)
		if err != nil {
			t.Fatal(err)
		}
		back, err := parseVol(out, true)
		if err != nil {
			t.Fatalf("reparse of %q: %v", out, err)
		}
		// Sizes round up to a sector or KiB; qemu-img's other formats
		// round to their own units (vmdk's 64 KiB grains: 0 becomes 65536).
		slack := uint64(1023)
		if req.Format != "" && req.Format != "raw" && req.Format != "qcow2" {
			slack = 64 << 10
		}
		if back.Name != req.Name || back.Format != req.Format || back.Capacity < req.Capacity || back.Capacity > req.Capacity+slack {
			t.Fatalf("round trip: %+v became %+v", req, back)
		}
	})
}
