// Package metaxml edits the application elements inside a domain's
// <metadata> the way libvirt 9.0 does (virDomainDefSetMetadata,
// virXMLInjectNamespace, virXMLExtractNamespaceXML in src/util/virxml.c):
// each application owns the child elements in its namespace URI, stored
// with the prefix it chose, and reads them back without the namespace.
//
// Output is libxml2's xmlNodeDump with formatting on, as libvirt prints:
// two-space indentation where an element holds only elements, attributes
// in double quotes, non-ASCII characters as character references.
package metaxml

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/compat/xmlwf"
)

type nsDef struct{ prefix, uri string } // prefix "" is xmlns='...'

type attr struct{ name, value string } // name as written, e.g. "a" or "x:a"

// elem is an element as libxml2 keeps it: its own namespace declarations
// apart from its attributes, children in order (text nodes are elems with
// isText set).
type elem struct {
	isText   bool
	text     string
	prefix   string
	local    string
	nsDefs   []nsDef
	attrs    []attr
	children []*elem
	// ns is the namespace URI the element is in ("" for none), resolved
	// when parsed and kept through edits, as libxml2's node->ns is.
	ns string
}

func (e *elem) qname() string {
	if e.prefix == "" {
		return e.local
	}
	return e.prefix + ":" + e.local
}

// Set is virDomainDefSetMetadata for VIR_DOMAIN_METADATA_ELEMENT: it
// returns the new content of <metadata> (inner, its current content) with
// every element of namespace uri removed and, if xmlText is not nil, that
// element added last, its namespace set to uri with prefix key.
func Set(inner string, xmlText *string, key, uri string) (string, error) {
	var add *elem
	if xmlText != nil {
		var err error
		if add, err = parseOne(*xmlText); err != nil {
			return "", err
		}
		if !validNCName(key) {
			return "", compat.Errorf(libvirt.ErrInternalError, compat.FromDomain, "failed to validate prefix for a new XML namespace")
		}
		inject(add, key, uri)
	}
	kids, err := parseContent(inner)
	if err != nil {
		return "", fmt.Errorf("stored metadata: %w", err)
	}
	var out strings.Builder
	for _, k := range kids {
		if !k.isText && k.ns == uri {
			continue
		}
		if k.isText && strings.TrimSpace(k.text) == "" {
			continue
		}
		dump(&out, k, 0, false)
	}
	if add != nil {
		dump(&out, add, 0, false)
	}
	return out.String(), nil
}

// Get is virXMLExtractNamespaceXML: the first element of namespace uri in
// <metadata> (content inner), printed without that namespace. found is
// false when there is none.
func Get(inner, uri string) (text string, found bool, err error) {
	kids, err := parseContent(inner)
	if err != nil {
		return "", false, fmt.Errorf("stored metadata: %w", err)
	}
	for _, k := range kids {
		if k.isText || k.ns != uri {
			continue
		}
		c := k.copy()
		stripNS(c, uri)
		for i, d := range c.nsDefs {
			if d.uri == uri {
				c.nsDefs = append(c.nsDefs[:i:i], c.nsDefs[i+1:]...)
				break
			}
		}
		var b strings.Builder
		dump(&b, c, 0, false)
		return b.String(), true, nil
	}
	return "", false, nil
}

func (e *elem) copy() *elem {
	c := *e
	c.nsDefs = append([]nsDef(nil), e.nsDefs...)
	c.attrs = append([]attr(nil), e.attrs...)
	c.children = make([]*elem, len(e.children))
	for i, k := range e.children {
		c.children[i] = k.copy()
	}
	return &c
}

// inject is virXMLInjectNamespace: declare uri as key on the root and put
// every element without a namespace in it.
func inject(root *elem, key, uri string) {
	root.nsDefs = append(root.nsDefs, nsDef{prefix: key, uri: uri})
	var walk func(*elem)
	walk = func(e *elem) {
		if e.isText {
			return
		}
		if e.ns == "" && !strings.Contains(e.local, ":") {
			e.ns, e.prefix = uri, key
		}
		for _, k := range e.children {
			walk(k)
		}
	}
	walk(root)
}

// stripNS is virXMLRemoveElementNamespace over a subtree.
func stripNS(e *elem, uri string) {
	if e.isText {
		return
	}
	if e.ns == uri {
		e.ns, e.prefix = "", ""
	}
	for _, k := range e.children {
		stripNS(k, uri)
	}
}

// parseOne parses the application's XML: one well-formed element, errors
// as libvirt reports libxml2's ("(metadata_xml):LINE: ...").
func parseOne(doc string) (*elem, error) {
	if err := wellFormed(doc); err != nil {
		return nil, err
	}
	kids, err := parseContent(doc)
	if err != nil {
		return nil, compat.Errorf(libvirt.ErrXMLDetail, compat.FromDomain, "(metadata_xml):1: %s", err)
	}
	for _, k := range kids {
		if !k.isText {
			return k, nil
		}
	}
	return nil, compat.Errorf(libvirt.ErrXMLDetail, compat.FromDomain, "(metadata_xml):1: Document is empty")
}

func wellFormed(doc string) error {
	_, err := xmlwf.Check(doc, "(metadata_xml)", compat.FromDomain)
	return err
}

// parseContent parses a sequence of elements and text (the content of
// <metadata>), resolving each element's namespace. As libvirt parses
// with blanks ignorable, white space between elements is dropped.
func parseContent(doc string) ([]*elem, error) {
	d := xml.NewDecoder(strings.NewReader(doc))
	top := &elem{}
	stack := []*elem{top}
	for {
		tok, err := d.RawToken()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		parent := stack[len(stack)-1]
		switch t := tok.(type) {
		case xml.StartElement:
			e := &elem{prefix: t.Name.Space, local: t.Name.Local}
			for _, a := range t.Attr {
				switch {
				case a.Name.Space == "xmlns":
					e.nsDefs = append(e.nsDefs, nsDef{prefix: a.Name.Local, uri: a.Value})
				case a.Name.Space == "" && a.Name.Local == "xmlns":
					e.nsDefs = append(e.nsDefs, nsDef{uri: a.Value})
				case a.Name.Space != "":
					e.attrs = append(e.attrs, attr{a.Name.Space + ":" + a.Name.Local, a.Value})
				default:
					e.attrs = append(e.attrs, attr{a.Name.Local, a.Value})
				}
			}
			parent.children = append(parent.children, e)
			stack = append(stack, e)
			e.ns = resolve(stack, e.prefix)
		case xml.EndElement:
			if len(stack) == 1 {
				return nil, errors.New("unbalanced end element")
			}
			stack = stack[:len(stack)-1]
		case xml.CharData:
			parent.children = append(parent.children, &elem{isText: true, text: string(t)})
		}
	}
	if len(stack) != 1 {
		return nil, errors.New("unexpected end of data")
	}
	dropBlanks(top)
	return top.children, nil
}

// resolve finds the URI bound to prefix in scope ("" if none).
func resolve(stack []*elem, prefix string) string {
	for i := len(stack) - 1; i >= 0; i-- {
		for _, d := range stack[i].nsDefs {
			if d.prefix == prefix {
				return d.uri
			}
		}
	}
	return ""
}

// dropBlanks removes white space text from elements whose content is
// elements and white space only (libxml2's ignorable blanks); text that
// is an element's only content, or mixed with other text, stays.
func dropBlanks(e *elem) {
	hasElem, hasText := false, false
	for _, k := range e.children {
		if !k.isText {
			hasElem = true
		} else if strings.TrimSpace(k.text) != "" {
			hasText = true
		}
	}
	if hasElem && !hasText {
		kept := e.children[:0]
		for _, k := range e.children {
			if !k.isText {
				kept = append(kept, k)
			}
		}
		e.children = kept
	}
	for _, k := range e.children {
		if !k.isText {
			dropBlanks(k)
		}
	}
}

// dump is xmlNodeDump with format=1: children are indented only when the
// element has no text child.
func dump(b *strings.Builder, e *elem, level int, inline bool) {
	if e.isText {
		b.WriteString(escape(e.text, false))
		return
	}
	b.WriteString("<" + e.qname())
	for _, d := range e.nsDefs {
		if d.prefix == "" {
			b.WriteString(` xmlns="` + escape(d.uri, true) + `"`)
		} else {
			b.WriteString(" xmlns:" + d.prefix + `="` + escape(d.uri, true) + `"`)
		}
	}
	for _, a := range e.attrs {
		b.WriteString(" " + a.name + `="` + escape(a.value, true) + `"`)
	}
	if len(e.children) == 0 {
		b.WriteString("/>")
		return
	}
	b.WriteString(">")
	format := !inline
	for _, k := range e.children {
		if k.isText {
			format = false
		}
	}
	for _, k := range e.children {
		if format {
			b.WriteString("\n" + strings.Repeat("  ", level+1))
		}
		dump(b, k, level+1, !format)
	}
	if format {
		b.WriteString("\n" + strings.Repeat("  ", level))
	}
	b.WriteString("</" + e.qname() + ">")
}

// escape is libxml2's serialization of text (xmlEscapeContent) or of an
// attribute value: without a document encoding, non-ASCII characters are
// written as character references.
func escape(s string, attribute bool) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '<':
			b.WriteString("&lt;")
		case r == '>':
			b.WriteString("&gt;")
		case r == '&':
			b.WriteString("&amp;")
		case r == '\r':
			b.WriteString("&#13;")
		case attribute && r == '"':
			b.WriteString("&quot;")
		case attribute && r == '\n':
			b.WriteString("&#10;")
		case attribute && r == '\t':
			b.WriteString("&#9;")
		case r >= utf8.RuneSelf:
			fmt.Fprintf(&b, "&#x%X;", r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// validNCName is xmlValidateNCName: a name without a colon.
func validNCName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		letter := r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= 0xC0 && r != 0xD7 && r != 0xF7
		if i == 0 && !letter {
			return false
		}
		if !letter && r != '-' && r != '.' && !(r >= '0' && r <= '9') && r != 0xB7 {
			return false
		}
	}
	return true
}
