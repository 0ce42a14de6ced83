package domainxml

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzDomainXML runs client-supplied domain XML through everything define
// does with it: parse, validate, fill in defaults, format. Whatever the
// input, each step returns an error or a result; none panics.
func FuzzDomainXML(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.xml")
	// The definitions real tools wrote, as a real libvirtd kept them.
	captured, _ := filepath.Glob("../qemucmd/testdata/libvirtd/*.xml")
	files = append(files, captured...)
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(string(b))
		}
	}
	f.Add("<domain type='qemu'><name>x</name><memory>1</memory></domain>")
	f.Add("<domain><devices><disk><backingStore/></disk></devices></domain>")
	f.Fuzz(func(t *testing.T, doc string) {
		d, err := Parse(doc)
		if err != nil {
			return
		}
		if err := Validate(d, fakeHost{}); err != nil {
			return
		}
		if err := ApplyDefaults(d, fakeHost{}); err != nil {
			return
		}
		for _, o := range []FormatOptions{{Inactive: true}, {Migratable: true}, {Live: &LiveInfo{ID: 1}}} {
			Format(d, o)
		}
	})
}
