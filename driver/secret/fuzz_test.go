package secret

import (
	"testing"

	"github.com/govirtd/govirtd/compat"
)

// FuzzParseDef feeds client XML to the parser: it must never panic, must
// answer bad input with a libvirt error, and what it accepts must print
// and parse back to the same definition.
func FuzzParseDef(f *testing.F) {
	for _, s := range []string{
		volXML,
		`<secret/>`,
		`<secret ephemeral='yes' private='yes'><usage type='ceph'><name>c</name></usage></secret>`,
		`<secret><usage type='iscsi'><target>iqn.2004-04.com:x</target></usage></secret>`,
		`<secret><usage type='tls'><name>t</name></usage><description>a &amp; b</description></secret>`,
		`<secret><usage type='vtpm'><name>v</name></usage></secret>`,
		`<secret><uuid>zzz</uuid></secret>`,
		`<secret><usage type='x'/></secret>`,
		`<foo/>`,
		`<secret>`,
		``,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		d, err := parseDef(doc)
		if err != nil {
			if le := compat.As(err); le.Err != nil {
				t.Fatalf("not a libvirt error: %v", err)
			}
			return
		}
		out, err := d.format()
		if err != nil {
			t.Fatalf("format: %v", err)
		}
		d2, err := parseDef(out)
		if err != nil {
			t.Fatalf("reparse of %q: %v", out, err)
		}
		if *d2 != *d {
			t.Fatalf("round trip: %+v became %+v", d, d2)
		}
	})
}
