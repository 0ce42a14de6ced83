// Package xmlfmt prints XML the way libvirt prints it: two-space
// indentation, single-quoted attributes, self-closing empty elements and
// no XML declaration. Clients diff and hash libvirt's XML, and migration
// peers compare it, so govirtd's output must not differ in form.
package xmlfmt

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Options adjusts Reformat.
type Options struct {
	// AttrOrder puts the listed attributes of an element first, in the
	// given order; other attributes keep their input order after them. The
	// key is "parent/element" (e.g. "video/model") or just "element". It
	// exists because encoding/xml marshals attributes in struct-field order,
	// which is not always libvirt's.
	AttrOrder map[string][]string
	// ChildOrder sorts the child elements of an element (keyed like
	// AttrOrder) stably by their position in the list; unlisted children
	// go last. Needed where libvirt's element order differs from
	// libvirtxml's field order.
	ChildOrder map[string][]string
	// AttrValue rewrites attribute values, keyed "parent/element@attr"
	// (e.g. printing a number in libvirt's hex form).
	AttrValue map[string]func(string) string
}

type node struct {
	name     string
	attrs    []xml.Attr
	children []*node
	text     string // character data of an element without child elements
}

// Reformat re-prints an XML document in libvirt's style. Whitespace-only
// text between elements is dropped; other text is kept as is (trimmed for
// elements that also hold child elements, which libvirt never produces).
func Reformat(doc string) (string, error) {
	return ReformatWith(doc, Options{})
}

// ReformatWith is Reformat with options.
func ReformatWith(doc string, opts Options) (string, error) {
	root, err := parse(doc)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	write(&b, root, "", 0, opts, false)
	return b.String(), nil
}

func qname(n xml.Name) string {
	if n.Space != "" {
		return n.Space + ":" + n.Local
	}
	return n.Local
}

func parse(doc string) (*node, error) {
	d := xml.NewDecoder(strings.NewReader(doc))
	var stack []*node
	var root *node
	var text []string // character data collected per open element
	for {
		// RawToken keeps namespace prefixes as written (e.g. qemu:commandline)
		// instead of expanding them to URLs.
		tok, err := d.RawToken()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reformatting XML: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			n := &node{name: qname(t.Name)}
			for _, a := range t.Attr {
				a.Name.Local = qname(a.Name)
				a.Name.Space = ""
				n.attrs = append(n.attrs, a)
			}
			if len(stack) == 0 {
				if root != nil {
					return nil, errors.New("reformatting XML: more than one root element")
				}
				root = n
			} else {
				p := stack[len(stack)-1]
				p.children = append(p.children, n)
			}
			stack = append(stack, n)
			text = append(text, "")
		case xml.EndElement:
			if len(stack) == 0 {
				return nil, errors.New("reformatting XML: unbalanced end element")
			}
			n := stack[len(stack)-1]
			// RawToken does not pair start and end tags; check it here.
			if qname(t.Name) != n.name {
				return nil, fmt.Errorf("reformatting XML: element <%s> closed by </%s>", n.name, qname(t.Name))
			}
			s := text[len(text)-1]
			if len(n.children) == 0 {
				if strings.TrimSpace(s) != "" {
					n.text = s
				}
			} else {
				n.text = strings.TrimSpace(s)
			}
			stack = stack[:len(stack)-1]
			text = text[:len(text)-1]
		case xml.CharData:
			if len(text) > 0 {
				text[len(text)-1] += string(t)
			}
		}
	}
	if root == nil {
		return nil, errors.New("reformatting XML: no root element")
	}
	if len(stack) != 0 {
		return nil, errors.New("reformatting XML: unexpected end of document")
	}
	return root, nil
}

// escape follows libvirt's virBufferEscapeString: the five XML special
// characters become entities, in attributes and text alike.
var escaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "'", "&apos;", "\"", "&quot;")

// dqEscaper is libxml2's attribute escaping (xmlAttrSerializeTxtContent).
var dqEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "\"", "&quot;")

// dqTextEscaper is libxml2's text escaping (xmlEscapeContent): quotes
// stay as they are.
var dqTextEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "\r", "&#13;")

func orderedAttrs(n *node, parent string, opts Options) []xml.Attr {
	order, ok := opts.AttrOrder[parent+"/"+n.name]
	if !ok {
		order, ok = opts.AttrOrder[n.name]
	}
	if !ok {
		return n.attrs
	}
	out := make([]xml.Attr, 0, len(n.attrs))
	used := make([]bool, len(n.attrs))
	for _, name := range order {
		for i, a := range n.attrs {
			if !used[i] && a.Name.Local == name {
				out = append(out, a)
				used[i] = true
			}
		}
	}
	for i, a := range n.attrs {
		if !used[i] {
			out = append(out, a)
		}
	}
	return out
}

func lookup[T any](m map[string]T, parent, name string) (T, bool) {
	if v, ok := m[parent+"/"+name]; ok {
		return v, true
	}
	v, ok := m[name]
	return v, ok
}

// write prints n. Inside <metadata> libvirt copies the application's
// elements with libxml2's own printer, which double-quotes attributes;
// dq says n is such an element.
func write(b *strings.Builder, n *node, parent string, depth int, opts Options, dq bool) {
	if order, ok := lookup(opts.ChildOrder, parent, n.name); ok {
		rank := func(c *node) int {
			if i := slices.Index(order, c.name); i >= 0 {
				return i
			}
			return len(order)
		}
		slices.SortStableFunc(n.children, func(a, b *node) int { return rank(a) - rank(b) })
	}
	indent := strings.Repeat("  ", depth)
	b.WriteString(indent)
	b.WriteString("<" + n.name)
	for _, a := range orderedAttrs(n, parent, opts) {
		v := a.Value
		if f, ok := lookup(opts.AttrValue, parent, n.name+"@"+a.Name.Local); ok {
			v = f(v)
		}
		if dq {
			b.WriteString(" " + a.Name.Local + "=\"" + dqEscaper.Replace(v) + "\"")
		} else {
			b.WriteString(" " + a.Name.Local + "='" + escaper.Replace(v) + "'")
		}
	}
	textEscaper := escaper
	if dq {
		textEscaper = dqTextEscaper
	}
	switch {
	case len(n.children) == 0 && n.text == "":
		b.WriteString("/>\n")
	case len(n.children) == 0:
		b.WriteString(">" + textEscaper.Replace(n.text) + "</" + n.name + ">\n")
	default:
		b.WriteString(">\n")
		if n.text != "" {
			b.WriteString(indent + "  " + textEscaper.Replace(n.text) + "\n")
		}
		for _, c := range n.children {
			write(b, c, n.name, depth+1, opts, dq || n.name == "metadata" && depth == 1)
		}
		b.WriteString(indent + "</" + n.name + ">\n")
	}
}
