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

// Save and restore change state; reading a save image's XML is a query
// (the secure flag is refused there by the handler, as libvirt does).
func TestReadOnlySaveProcedures(t *testing.T) {
	for proc, want := range map[string]bool{
		"DOMAIN_SAVE":                      false,
		"DOMAIN_SAVE_FLAGS":                false,
		"DOMAIN_SAVE_PARAMS":               false,
		"DOMAIN_RESTORE":                   false,
		"DOMAIN_RESTORE_FLAGS":             false,
		"DOMAIN_RESTORE_PARAMS":            false,
		"DOMAIN_SAVE_IMAGE_DEFINE_XML":     false,
		"DOMAIN_MANAGED_SAVE":              false,
		"DOMAIN_MANAGED_SAVE_REMOVE":       false,
		"DOMAIN_MANAGED_SAVE_DEFINE_XML":   false,
		"DOMAIN_SAVE_IMAGE_GET_XML_DESC":   true,
		"DOMAIN_MANAGED_SAVE_GET_XML_DESC": true,
		"DOMAIN_HAS_MANAGED_SAVE_IMAGE":    true,
	} {
		if got := ReadOnlyAllowed(proc); got != want {
			t.Errorf("ReadOnlyAllowed(%s) = %v, want %v", proc, got, want)
		}
	}
}
