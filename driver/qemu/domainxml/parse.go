package domainxml

import (
	"fmt"
	"strings"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/compat/xmlwf"
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
	root, err := xmlwf.Check(doc, "(domain_definition)", compat.FromDomain)
	if err == nil && root != "domain" {
		err = compat.Errorf(libvirt.ErrXMLError, compat.FromDomain, "expecting root element of 'domain', not '%s'", root)
	}
	return err
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
