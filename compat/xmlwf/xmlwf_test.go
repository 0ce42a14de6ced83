package xmlwf

import (
	"testing"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
)

func TestCheck(t *testing.T) {
	for doc, want := range map[string]string{
		"":                 "(x_definition):1: Document is empty",
		"  \n ":            "(x_definition):2: Document is empty",
		"<a>":              "(x_definition):1: Premature end of data",
		"<a/><b/>":         "(x_definition):1: Extra content at the end of the document",
		"<a/>junk":         "(x_definition):1: Extra content at the end of the document",
		"junk":             "(x_definition):1: Start tag expected, '<' not found",
		"<a x='1' x='2'/>": "(x_definition):1: Attribute x redefined",
		"<a>\n<b></a>":     "(x_definition):2: element <b> closed by </a>",
		"<a>\n</a>\n<a>\n": "(x_definition):3: Extra content at the end of the document",
	} {
		_, err := Check(doc, "(x_definition)", compat.FromDomain)
		le := compat.As(err)
		if err == nil || le.Code != libvirt.ErrXMLDetail || le.Message() != want {
			t.Errorf("Check(%q) = %v, want %q", doc, err, want)
		}
	}
	if root, err := Check("<?xml version='1.0'?>\n<!-- c -->\n<domain type='kvm'><name>x</name></domain>\n", "(d)", compat.FromDomain); err != nil || root != "domain" {
		t.Errorf("Check(good) = %q, %v", root, err)
	}
}
