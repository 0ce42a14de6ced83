package domainxml

import (
	"encoding/xml"
	"errors"
	"fmt"
	"strings"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
)

// Parse reads domain XML the way virDomainDefParseString does, up to (not
// including) the driver's post-parse defaults.
//
// Errors follow libvirt 9.0 (src/util/virxml.c, src/conf/domain_conf.c):
//   - XML that is not well formed: VIR_ERR_XML_DETAIL from VIR_FROM_DOMAIN,
//     message "(domain_definition):LINE: ..." (libvirt prints libxml2's
//     text there; govirtd prints Go's parser text after the same prefix);
//   - a root element other than <domain>: VIR_ERR_XML_ERROR
//     "expecting root element of 'domain', not 'X'";
//   - no <name>: VIR_ERR_NO_NAME "missing name information";
//   - no or zero <memory>: VIR_ERR_XML_ERROR "Memory size must be specified
//     via <memory> or in the <numa> configuration" (virDomainDefPostParseMemory);
//   - an unparsable number: VIR_ERR_XML_ERROR naming the element.
func Parse(xmlText string) (*libvirtxml.Domain, error) {
	if err := wellFormed(xmlText); err != nil {
		return nil, err
	}
	dom := &libvirtxml.Domain{}
	if err := dom.Unmarshal(xmlText); err != nil {
		return nil, compat.Errorf(libvirt.ErrXMLError, compat.FromDomain, "%s", parseDetail(err))
	}
	if dom.Name == "" {
		return nil, &compat.Error{Code: libvirt.ErrNoName, Domain: compat.FromDomain, Int1: -1}
	}
	if dom.Memory == nil || dom.Memory.Value == 0 {
		return nil, compat.Errorf(libvirt.ErrXMLError, compat.FromDomain,
			"Memory size must be specified via <memory> or in the <numa> configuration")
	}
	return dom, nil
}

// wellFormed checks the document with a plain decoder first, so syntax
// errors carry a line number and are not confused with libvirtxml's value
// errors, and checks the root element name.
func wellFormed(doc string) error {
	d := xml.NewDecoder(strings.NewReader(doc))
	depth := 0
	rootSeen := false
	for {
		tok, err := d.Token()
		if err != nil {
			if err.Error() == "EOF" && depth == 0 && rootSeen {
				return nil
			}
			var se *xml.SyntaxError
			line := 1
			msg := err.Error()
			if errors.As(err, &se) {
				line, msg = se.Line, se.Msg
			} else if err.Error() == "EOF" {
				line, _ = d.InputPos()
				msg = "Premature end of data"
				if !rootSeen {
					msg = "Document is empty"
				}
			}
			return compat.Errorf(libvirt.ErrXMLDetail, compat.FromDomain, "(domain_definition):%d: %s", line, msg)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				if rootSeen {
					line, _ := d.InputPos()
					return compat.Errorf(libvirt.ErrXMLDetail, compat.FromDomain, "(domain_definition):%d: Extra content at the end of the document", line)
				}
				rootSeen = true
				if t.Name.Local != "domain" {
					return compat.Errorf(libvirt.ErrXMLError, compat.FromDomain,
						"expecting root element of 'domain', not '%s'", t.Name.Local)
				}
			}
			depth++
		case xml.EndElement:
			depth--
		}
	}
}

// parseDetail turns libvirtxml's value errors (strconv failures on
// numbers) into libvirt-like text.
func parseDetail(err error) string {
	msg := err.Error()
	if strings.Contains(msg, "strconv") || strings.Contains(msg, "invalid syntax") {
		return fmt.Sprintf("invalid value in domain definition: %s", msg)
	}
	return msg
}
