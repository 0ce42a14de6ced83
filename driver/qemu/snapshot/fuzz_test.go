package snapshot

import (
	"reflect"
	"testing"
)

// FuzzSnapshotXML: no input panics the parser, and what it accepts
// formats to XML that parses back to the same definition.
func FuzzSnapshotXML(f *testing.F) {
	f.Add("<domainsnapshot><name>s</name><description>x</description><memory snapshot='internal'/><disks><disk name='vda' snapshot='internal'/></disks></domainsnapshot>")
	f.Add("<domainsnapshot><disks><disk name='vda'><driver type='qcow2'/><source file='/a.s1'/></disk><disk name='hdc' snapshot='no'/></disks></domainsnapshot>")
	f.Add("<domainsnapshot><name>r</name><state>shutoff</state><creationTime>5</creationTime><parent><name>p</name></parent></domainsnapshot>")
	f.Add("<domainsnapshot><memory file='/m'/></domainsnapshot>")
	f.Add("<domain/>")
	f.Fuzz(func(t *testing.T, doc string) {
		for _, redefine := range []bool{false, true} {
			o := ParseOptions{Redefine: redefine}
			def, err := Parse(doc, o)
			if err != nil {
				continue
			}
			// A parsed definition is complete: reparse it as a
			// redefinition, which keeps every field.
			def.State = StateRunning
			if def.Memory != nil && def.Memory.Snapshot == LocationNo {
				def.Memory = nil
			}
			out, err := Format(def, "")
			if err != nil {
				t.Fatalf("format of accepted %q: %v", doc, err)
			}
			again, err := Parse(out, ParseOptions{Redefine: true})
			if err != nil {
				t.Fatalf("formatted XML does not parse: %v\n%s", err, out)
			}
			if again.Memory == nil || def.Memory == nil {
				again.Memory, def.Memory = nil, nil
			}
			if !reflect.DeepEqual(def, again) {
				t.Fatalf("round trip changed the definition:\n%#v\n%#v\n%s", def, again, out)
			}
		}
	})
}
