package compat

import "testing"

// The secret procedures on the read-only socket are what libvirt 9.0
// allows there: queries yes; define, undefine, set-value and get-value
// (virSecretGetValue has virCheckReadOnlyGoto) no.
func TestReadOnlySecretProcedures(t *testing.T) {
	for proc, want := range map[string]bool{
		"SECRET_DEFINE_XML":                   false,
		"SECRET_UNDEFINE":                     false,
		"SECRET_SET_VALUE":                    false,
		"SECRET_GET_VALUE":                    false,
		"SECRET_GET_XML_DESC":                 true,
		"SECRET_LOOKUP_BY_UUID":               true,
		"SECRET_LOOKUP_BY_USAGE":              true,
		"CONNECT_LIST_ALL_SECRETS":            true,
		"CONNECT_LIST_SECRETS":                true,
		"CONNECT_NUM_OF_SECRETS":              true,
		"CONNECT_SECRET_EVENT_REGISTER_ANY":   true,
		"CONNECT_SECRET_EVENT_DEREGISTER_ANY": true,
	} {
		if got := ReadOnlyAllowed(proc); got != want {
			t.Errorf("ReadOnlyAllowed(%s) = %v, want %v", proc, got, want)
		}
	}
}
