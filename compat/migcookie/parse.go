package migcookie

import (
	"bytes"
	"cmp"
	"encoding/xml"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/compat/xmlfmt"
)

// Parse reads a cookie as it arrives in a migration call, with or without
// the trailing NUL; anything after the first NUL is ignored, as libvirt
// reads the cookie as a C string.
//
// Empty data is no cookie: Parse returns (nil, nil), as libvirt skips
// parsing when the cookie length is 0 (the p2p client sends none, and
// Finish after an offline migration gets none). A lone NUL is an empty
// document and an error, as in libvirt.
//
// Errors are libvirt's (qemuMigrationCookieXMLParse), all from the QEMU
// error domain: XML that is not well formed is VIR_ERR_XML_DETAIL
// "(qemu_migration_cookie):LINE: ..." (libvirt prints libxml2's text after
// that prefix, govirtd Go's); a missing <name>, <uuid>, <hostname> or
// <hostuuid>, a malformed <hostuuid>, a <feature> without a name and the
// per-element errors are VIR_ERR_INTERNAL_ERROR with libvirt's wording.
// Comparing the cookie with the local domain and host is left to
// CheckDomain, CheckHost and CheckMandatory (or Check, all three in
// libvirt's order).
//
// Like libvirt, Parse does not insist on the root element being
// <qemu-migration>, reads the first element of each name, and ignores
// elements it does not know.
func Parse(data []byte) (*Cookie, error) {
	if len(data) == 0 {
		return nil, nil
	}
	if i := bytes.IndexByte(data, 0); i >= 0 {
		data = data[:i]
	}
	text := string(data)
	root, err := parseTree(text)
	if err != nil {
		return nil, err
	}
	return fromTree(root, text)
}

// CheckTerminated is libvirt's first check on an incoming cookie
// (qemuMigrationCookieParse): a non-empty cookie must end with NUL.
func CheckTerminated(data []byte) error {
	if len(data) > 0 && data[len(data)-1] != 0 {
		return internal("Migration cookie was not NULL terminated")
	}
	return nil
}

func internal(format string, args ...any) error {
	return compat.Errorf(libvirt.ErrInternalError, compat.FromQEMU, format, args...)
}

func fromTree(root *node, text string) (*Cookie, error) {
	c := &Cookie{}
	// virXPathString treats an empty string as no string at all, so an
	// empty element is as missing as an absent one.
	if c.Name = root.childText("name"); c.Name == "" {
		return nil, internal("missing name element in migration data")
	}
	if c.UUID = root.childText("uuid"); c.UUID == "" {
		return nil, internal("missing uuid element in migration data")
	}
	if c.Hostname = root.childText("hostname"); c.Hostname == "" {
		return nil, internal("missing hostname element in migration data")
	}
	if c.HostUUID = root.childText("hostuuid"); c.HostUUID == "" {
		return nil, internal("missing hostuuid element in migration data")
	}
	if _, ok := parseUUID(c.HostUUID); !ok {
		return nil, internal("malformed hostuuid element in migration data")
	}

	var domains []*node
	for _, n := range root.children {
		switch n.name {
		case "feature":
			name, ok := n.attr("name")
			if !ok {
				return nil, internal("missing feature name")
			}
			c.Features = append(c.Features, name)
		case "domain":
			domains = append(domains, n)
		}
	}

	if n := root.child("graphics"); n != nil {
		raw, err := rawElement(n, text)
		if err != nil {
			return nil, err
		}
		c.Graphics = raw
	}
	if n := root.child("lockstate"); n != nil {
		driver, ok := n.attr("driver")
		if !ok {
			return nil, internal("Missing lock driver name in migration cookie")
		}
		c.LockState = &LockState{Driver: driver}
		if l := n.child("leases"); l != nil {
			c.LockState.Leases = l.text()
		}
	}
	switch len(domains) {
	case 0:
	case 1:
		def := &libvirtxml.Domain{}
		src, err := keep(domains[0].source(text), def)
		if err != nil {
			return nil, compat.Errorf(libvirt.ErrXMLError, compat.FromQEMU, "%s", err)
		}
		c.Persistent, c.persistentSrc = def, src
	default:
		return nil, internal("Too many domain elements in migration cookie")
	}
	if n := root.child("network"); n != nil {
		raw, err := rawElement(n, text)
		if err != nil {
			return nil, err
		}
		c.Network = raw
	}
	if n := root.child("nbd"); n != nil {
		nbd, err := parseNBD(n)
		if err != nil {
			return nil, err
		}
		c.NBD = nbd
	}
	if n := root.child("statistics"); n != nil {
		c.Stats = parseStats(n)
	}
	if n := root.child("cpu"); n != nil {
		cpu := &libvirtxml.DomainCPU{}
		src, err := keep(n.source(text), cpu)
		if err != nil {
			return nil, compat.Errorf(libvirt.ErrXMLError, compat.FromQEMU, "%s", err)
		}
		c.CPU, c.cpuSrc = cpu, src
	}
	if n := root.child("allowReboot"); n != nil {
		raw, err := rawElement(n, text)
		if err != nil {
			return nil, err
		}
		c.AllowReboot = raw
	}
	if n := root.child("capabilities"); n != nil {
		c.Caps = []MigrationCap{}
		for _, cp := range n.children {
			if cp.name != "cap" {
				continue
			}
			name, ok := cp.attr("name")
			if !ok {
				return nil, internal("missing migration capability name")
			}
			// libvirt drops capabilities it does not know; govirtd keeps
			// them, so that a newer peer's list is seen as sent.
			auto, _ := cp.attr("auto")
			c.Caps = append(c.Caps, MigrationCap{Name: name, Auto: auto == "yes"})
		}
	}
	if n := root.child("blockDirtyBitmaps"); n != nil {
		if err := checkBitmaps(n); err != nil {
			return nil, err
		}
		raw, err := rawElement(n, text)
		if err != nil {
			return nil, err
		}
		c.BlockDirtyBitmaps = raw
	}
	if n := root.child("govirtd"); n != nil {
		c.Govirtd = &Extension{URI: n.childText("uri")}
	}
	return c, nil
}

// parseNBD is qemuMigrationCookieNBDXMLParse.
func parseNBD(n *node) (*NBD, error) {
	nbd := &NBD{}
	if port, ok := n.attr("port"); ok && port != "" {
		p, err := strconv.ParseInt(port, 10, 32)
		if err != nil {
			return nil, internal("Malformed nbd port '%s'", port)
		}
		nbd.Port = int(p)
	}
	for _, d := range n.children {
		if d.name != "disk" {
			continue
		}
		target, _ := d.attr("target")
		if target == "" {
			return nil, internal("Malformed disk target")
		}
		capStr, ok := d.attr("capacity")
		capacity, valid := parseULL(capStr)
		if !ok || capStr == "" || !valid {
			if !ok || capStr == "" {
				capStr = "<null>" // libvirt's NULLSTR
			}
			return nil, internal("Malformed disk capacity: '%s'", capStr)
		}
		nbd.Disks = append(nbd.Disks, NBDDisk{Target: target, Capacity: capacity})
	}
	return nbd, nil
}

// checkBitmaps applies qemuMigrationCookieBlockDirtyBitmapsParse's checks
// to the element govirtd otherwise keeps as it is.
func checkBitmaps(n *node) error {
	for _, d := range n.children {
		if d.name != "disk" {
			continue
		}
		for _, b := range d.children {
			if b.name != "bitmap" {
				continue
			}
			_, okName := b.attr("name")
			_, okAlias := b.attr("alias")
			if !okName || !okAlias {
				return internal("malformed <blockDirtyBitmaps> in migration cookie")
			}
		}
		if _, ok := d.attr("target"); !ok {
			return internal("malformed <blockDirtyBitmaps> in migration cookie")
		}
	}
	return nil
}

func rawElement(n *node, text string) (RawXML, error) {
	out, err := xmlfmt.Reformat(n.source(text))
	if err != nil {
		return "", compat.Errorf(libvirt.ErrXMLError, compat.FromQEMU, "%s", err)
	}
	return RawXML(out), nil
}

// node is one element of the cookie document.
type node struct {
	name       string
	attrs      []xml.Attr
	children   []*node
	start, end int64 // byte range of the element in the document
	doc        *document
}

// document holds the character data of the whole cookie in document
// order, so that an element's text is found when asked for instead of
// being copied into every ancestor while parsing.
type document struct {
	chars []charData
}

type charData struct {
	off  int64
	text string
}

// text is XPath's string(): all character data inside the element.
func (n *node) text() string {
	cs := n.doc.chars
	i, _ := slices.BinarySearchFunc(cs, n.start, func(c charData, off int64) int { return cmp.Compare(c.off, off) })
	var b strings.Builder
	for ; i < len(cs) && cs[i].off < n.end; i++ {
		b.WriteString(cs[i].text)
	}
	return b.String()
}

func (n *node) child(name string) *node {
	for _, c := range n.children {
		if c.name == name {
			return c
		}
	}
	return nil
}

// childText is libvirt's string(./NAME[1]).
func (n *node) childText(name string) string {
	if c := n.child(name); c != nil {
		return c.text()
	}
	return ""
}

func (n *node) attr(name string) (string, bool) {
	for _, a := range n.attrs {
		if a.Name.Space == "" && a.Name.Local == name {
			return a.Value, true
		}
	}
	return "", false
}

func (n *node) source(text string) string { return text[n.start:n.end] }

func qname(n xml.Name) string {
	if n.Space != "" {
		return n.Space + ":" + n.Local
	}
	return n.Local
}

func xmlErr(line int, msg string) error {
	return compat.Errorf(libvirt.ErrXMLDetail, compat.FromQEMU, "(qemu_migration_cookie):%d: %s", line, msg)
}

// parseTree reads the document into nodes, checking that it is well formed.
func parseTree(text string) (*node, error) {
	d := xml.NewDecoder(strings.NewReader(text))
	doc := &document{}
	var root *node
	var stack []*node
	for {
		off := d.InputOffset()
		// RawToken keeps namespace prefixes as written (an embedded
		// <domain> may hold qemu:commandline); it does not pair tags, so
		// that is checked here.
		tok, err := d.RawToken()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var se *xml.SyntaxError
			if errors.As(err, &se) {
				msg := se.Msg
				// libxml2's wording for a document cut short.
				if msg == "unexpected EOF" && len(stack) > 0 {
					msg = "Premature end of data in tag " + stack[len(stack)-1].name
				}
				return nil, xmlErr(se.Line, msg)
			}
			line, _ := d.InputPos()
			return nil, xmlErr(line, err.Error())
		}
		switch t := tok.(type) {
		case xml.StartElement:
			n := &node{name: qname(t.Name), attrs: t.Attr, start: off, doc: doc}
			if len(stack) == 0 {
				if root != nil {
					line, _ := d.InputPos()
					return nil, xmlErr(line, "Extra content at the end of the document")
				}
				root = n
			} else {
				p := stack[len(stack)-1]
				p.children = append(p.children, n)
			}
			stack = append(stack, n)
		case xml.EndElement:
			line, _ := d.InputPos()
			if len(stack) == 0 {
				return nil, xmlErr(line, "Extra content at the end of the document")
			}
			n := stack[len(stack)-1]
			if qname(t.Name) != n.name {
				return nil, xmlErr(line, "Opening and ending tag mismatch: "+n.name+" and "+qname(t.Name))
			}
			n.end = d.InputOffset()
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				doc.chars = append(doc.chars, charData{off: off, text: string(t)})
			} else if strings.TrimSpace(string(t)) != "" {
				line, _ := d.InputPos()
				if root == nil {
					return nil, xmlErr(line, "Start tag expected, '<' not found")
				}
				return nil, xmlErr(line, "Extra content at the end of the document")
			}
		}
	}
	if root == nil {
		line, _ := d.InputPos()
		return nil, xmlErr(line, "Document is empty")
	}
	if len(stack) != 0 {
		line, _ := d.InputPos()
		return nil, xmlErr(line, "Premature end of data in tag "+stack[len(stack)-1].name)
	}
	return root, nil
}

// isSpace is C's isspace, which strtoull skips before a number.
func isSpace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\v' || r == '\f' || r == '\r'
}

// parseULL is virStrToLong_ull on a whole string: leading white space and
// a '+' are allowed, nothing may follow the digits. Negative numbers,
// which libvirt would wrap around, are refused.
func parseULL(s string) (uint64, bool) {
	s = strings.TrimLeftFunc(s, isSpace)
	s = strings.TrimPrefix(s, "+")
	v, err := strconv.ParseUint(s, 10, 64)
	return v, err == nil && s != "" && s[0] >= '0' && s[0] <= '9'
}

// parseLL is virStrToLong_ll on a whole string.
func parseLL(s string) (int64, bool) {
	s = strings.TrimLeftFunc(s, isSpace)
	digits := strings.TrimLeft(s, "+-")
	if len(s)-len(digits) > 1 || digits == "" || digits[0] < '0' || digits[0] > '9' {
		return 0, false
	}
	v, err := strconv.ParseInt(s, 10, 64)
	return v, err == nil
}

// parseUUID is libvirt's virUUIDParse (compat.ParseUUID).
func parseUUID(s string) ([16]byte, bool) {
	u, err := compat.ParseUUID(s)
	return u, err == nil
}
