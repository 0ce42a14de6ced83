package xmlfmt

import "testing"

func TestReformat(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"libvirtxml output",
			`<domain type="qemu"><name>demo</name><os><boot dev="hd"></boot></os><devices></devices></domain>`,
			"<domain type='qemu'>\n  <name>demo</name>\n  <os>\n    <boot dev='hd'/>\n  </os>\n  <devices/>\n</domain>\n"},
		{"declaration and whitespace dropped",
			"<?xml version=\"1.0\"?>\n<a>\n   <b x=\"1\"/>\n</a>\n",
			"<a>\n  <b x='1'/>\n</a>\n"},
		{"escaping",
			`<a t="it's &lt;x&gt; &quot;q&quot; &amp;">a &lt; b &amp; c</a>`,
			"<a t='it&apos;s &lt;x&gt; &quot;q&quot; &amp;'>a &lt; b &amp; c</a>\n"},
		{"text kept verbatim",
			`<description>  two  spaces </description>`,
			"<description>  two  spaces </description>\n"},
		{"namespace prefix kept",
			`<domain xmlns:qemu="http://libvirt.org/schemas/domain/qemu/1.0"><qemu:commandline><qemu:arg value="-S"/></qemu:commandline></domain>`,
			"<domain xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>\n  <qemu:commandline>\n    <qemu:arg value='-S'/>\n  </qemu:commandline>\n</domain>\n"},
	}
	for _, c := range cases {
		got, err := Reformat(c.in)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got != c.want {
			t.Errorf("%s:\ngot  %q\nwant %q", c.name, got, c.want)
		}
	}
}

func TestReformatAttrOrder(t *testing.T) {
	in := `<video><model type="cirrus" heads="1" vram="16384" primary="yes"></model></video>`
	got, err := ReformatWith(in, Options{AttrOrder: map[string][]string{"video/model": {"type", "ram", "vram", "vgamem", "heads", "primary"}}})
	if err != nil {
		t.Fatal(err)
	}
	want := "<video>\n  <model type='cirrus' vram='16384' heads='1' primary='yes'/>\n</video>\n"
	if got != want {
		t.Errorf("got %q want %q", got, want)
	}
}

func TestReformatErrors(t *testing.T) {
	for _, in := range []string{"", "<a>", "<a></b>", "<a/><b/>", "text"} {
		if _, err := Reformat(in); err == nil {
			t.Errorf("Reformat(%q) succeeded", in)
		}
	}
}

// Application elements in <metadata> are printed by libxml2: attributes in
// double quotes, and quotes in text left alone.
func TestReformatMetadataLikeLibxml2(t *testing.T) {
	in := `<domain><metadata><app:x xmlns:app="urn:a" k='it&apos;s'>say "hi" &amp; it's</app:x></metadata><name>n</name></domain>`
	want := "<domain>\n  <metadata>\n    <app:x xmlns:app=\"urn:a\" k=\"it's\">say \"hi\" &amp; it's</app:x>\n  </metadata>\n  <name>n</name>\n</domain>\n"
	got, err := Reformat(in)
	if err != nil || got != want {
		t.Errorf("Reformat = %q, %v\nwant %q", got, err, want)
	}
}
