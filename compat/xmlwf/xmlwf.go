// Package xmlwf checks that a document is one well-formed XML element
// before a parser reads its meaning, and says what is wrong in libxml2's
// words, as libvirt reports a parse failure: VIR_ERR_XML_DETAIL
// "(LABEL):LINE: MESSAGE", where LABEL names the kind of document
// ("(domain_definition)", "(network_definition)", ...). Go's decoder
// finds the same faults as libxml2, with its own wording for some; the
// common ones are translated.
package xmlwf

import (
	"encoding/xml"
	"errors"
	"io"
	"strings"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
)

// Check returns the local name of doc's root element, or the error libvirt
// reports for a document that is not one well-formed element: empty, cut
// short, a syntax error, a repeated attribute, text or a second element
// after the root. from is the error's domain (compat.FromDomain, ...).
func Check(doc, label string, from compat.Domain) (string, error) {
	d := xml.NewDecoder(strings.NewReader(doc))
	fail := func(line int, msg string) error {
		return compat.Errorf(libvirt.ErrXMLDetail, from, "%s:%d: %s", label, line, msg)
	}
	depth, root := 0, ""
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			line, _ := d.InputPos()
			switch {
			case root == "":
				return "", fail(line, "Document is empty")
			case depth != 0:
				return "", fail(line, "Premature end of data")
			}
			return root, nil
		}
		if err != nil {
			var se *xml.SyntaxError
			if errors.As(err, &se) {
				if se.Msg == "unexpected EOF" {
					return "", fail(se.Line, "Premature end of data")
				}
				return "", fail(se.Line, se.Msg)
			}
			line, _ := d.InputPos()
			return "", fail(line, err.Error())
		}
		switch t := tok.(type) {
		case xml.StartElement:
			seen := map[xml.Name]bool{}
			for _, a := range t.Attr {
				if seen[a.Name] {
					line, _ := d.InputPos()
					return "", fail(line, "Attribute "+a.Name.Local+" redefined")
				}
				seen[a.Name] = true
			}
			if depth == 0 {
				if root != "" {
					line, _ := d.InputPos()
					return "", fail(line, "Extra content at the end of the document")
				}
				root = t.Name.Local
			}
			depth++
		case xml.EndElement:
			depth--
		case xml.CharData:
			if depth == 0 && strings.TrimSpace(string(t)) != "" {
				line, _ := d.InputPos()
				if root == "" {
					return "", fail(line, "Start tag expected, '<' not found")
				}
				return "", fail(line, "Extra content at the end of the document")
			}
		}
	}
}
