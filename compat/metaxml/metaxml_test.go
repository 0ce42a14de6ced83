package metaxml

import (
	"strings"
	"testing"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
)

// The cases of libvirt's tests/metadatatest.c.
const (
	metadata1 = "<derp xmlns:foobar=\"http://foo.bar/\">\n" +
		"  <bar>foobar</bar>\n" +
		"  <foo fooish=\"blurb\">foofoo</foo>\n" +
		"  <foobar:baz>zomg</foobar:baz>\n" +
		"</derp>"
	metadata1NS = "<herp:derp xmlns:foobar=\"http://foo.bar/\" xmlns:herp=\"http://herp.derp/\">\n" +
		"  <herp:bar>foobar</herp:bar>\n" +
		"  <herp:foo fooish=\"blurb\">foofoo</herp:foo>\n" +
		"  <foobar:baz>zomg</foobar:baz>\n" +
		"</herp:derp>"
	metadata2   = "<foo>\n  <bar>baz</bar>\n</foo>"
	metadata2NS = "<blurb:foo xmlns:blurb=\"http://herp.derp/\">\n  <blurb:bar>baz</blurb:bar>\n</blurb:foo>"
)

func ptr(s string) *string { return &s }

func TestAssignRewriteErase(t *testing.T) {
	const uri = "http://herp.derp/"
	// Single-quoted input, as the test writes it, comes back double-quoted.
	in := strings.ReplaceAll(metadata1, "\"", "'")
	inner, err := Set("", &in, "herp", uri)
	if err != nil {
		t.Fatal(err)
	}
	if inner != metadata1NS {
		t.Errorf("stored:\n%s\nwant:\n%s", inner, metadata1NS)
	}
	got, found, err := Get(inner, uri)
	if err != nil || !found || got != metadata1 {
		t.Errorf("Get = %q %v %v, want %q", got, found, err, metadata1)
	}

	// Another application's element stays, whatever happens to ours.
	other := "<x:cfg xmlns:x=\"urn:other\">1</x:cfg>"
	inner += other
	inner, err = Set(inner, ptr(metadata2), "blurb", uri)
	if err != nil {
		t.Fatal(err)
	}
	if inner != other+metadata2NS {
		t.Errorf("rewritten:\n%s", inner)
	}
	if got, _, _ := Get(inner, uri); got != metadata2 {
		t.Errorf("after rewrite %q", got)
	}
	if got, found, _ := Get(inner, "urn:other"); !found || got != "<cfg>1</cfg>" {
		t.Errorf("other app's element %q %v", got, found)
	}

	inner, err = Set(inner, nil, "", uri)
	if err != nil || inner != other {
		t.Fatalf("erased: %q %v", inner, err)
	}
	if _, found, _ := Get(inner, uri); found {
		t.Error("erased element still found")
	}
}

// Stored definitions come back reindented (compat/xmlfmt) and are read
// the same.
func TestReadsReformattedStore(t *testing.T) {
	stored := "\n    <herp:derp xmlns:foobar=\"http://foo.bar/\" xmlns:herp=\"http://herp.derp/\">\n" +
		"      <herp:bar>foobar</herp:bar>\n" +
		"      <herp:foo fooish=\"blurb\">foofoo</herp:foo>\n" +
		"      <foobar:baz>zomg</foobar:baz>\n" +
		"    </herp:derp>\n  "
	got, found, err := Get(stored, "http://herp.derp/")
	if err != nil || !found || got != metadata1 {
		t.Errorf("Get = %q %v %v", got, found, err)
	}
}

func TestMixedContentAndEscaping(t *testing.T) {
	inner, err := Set("", ptr(`<n a='x"y'>caf&#233; <b>&lt;1</b> tail</n>`), "k", "urn:k")
	if err != nil {
		t.Fatal(err)
	}
	want := `<k:n xmlns:k="urn:k" a="x&quot;y">caf&#xE9; <k:b>&lt;1</k:b> tail</k:n>`
	if inner != want {
		t.Errorf("stored %s\nwant   %s", inner, want)
	}
	if got, _, _ := Get(inner, "urn:k"); got != `<n a="x&quot;y">caf&#xE9; <b>&lt;1</b> tail</n>` {
		t.Errorf("got %s", got)
	}
}

func TestErrors(t *testing.T) {
	for doc, msg := range map[string]string{
		"":                 "(metadata_xml):1: Document is empty",
		"<a><b></a>":       "(metadata_xml):1: element <b> closed by </a>",
		"<a/><b/>":         "(metadata_xml):1: Extra content at the end of the document",
		"<a>":              "(metadata_xml):1: Premature end of data",
		"just text":        "(metadata_xml):1: Start tag expected, '<' not found",
		"<a x='1' x='2'/>": "(metadata_xml):1: Attribute x redefined",
	} {
		_, err := Set("", &doc, "k", "urn:k")
		if !compat.Is(err, libvirt.ErrXMLDetail) || !strings.Contains(compat.As(err).Message(), msg) {
			t.Errorf("Set(%q) = %v, want XML_DETAIL %q", doc, err, msg)
		}
	}
	_, err := Set("", ptr("<a/>"), "bad:key", "urn:k")
	if !compat.Is(err, libvirt.ErrInternalError) || !strings.Contains(compat.As(err).Message(), "failed to validate prefix for a new XML namespace") {
		t.Errorf("bad key: %v", err)
	}
}
