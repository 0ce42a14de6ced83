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

// TestReadOnlyNetworkProcedures: the read-only socket may query networks
// but not change them, as libvirt's virCheckReadOnlyGoto in
// libvirt-network.c decides.
func TestReadOnlyNetworkProcedures(t *testing.T) {
	allowed := []string{
		"CONNECT_LIST_ALL_NETWORKS", "CONNECT_NUM_OF_NETWORKS", "CONNECT_NUM_OF_DEFINED_NETWORKS",
		"CONNECT_LIST_NETWORKS", "CONNECT_LIST_DEFINED_NETWORKS",
		"NETWORK_LOOKUP_BY_NAME", "NETWORK_LOOKUP_BY_UUID", "NETWORK_GET_XML_DESC",
		"NETWORK_GET_BRIDGE_NAME", "NETWORK_GET_AUTOSTART", "NETWORK_IS_ACTIVE", "NETWORK_IS_PERSISTENT",
		"NETWORK_GET_DHCP_LEASES", "CONNECT_NETWORK_EVENT_REGISTER_ANY", "CONNECT_NETWORK_EVENT_DEREGISTER_ANY",
	}
	denied := []string{
		"NETWORK_DEFINE_XML", "NETWORK_DEFINE_XML_FLAGS", "NETWORK_CREATE_XML", "NETWORK_CREATE_XML_FLAGS",
		"NETWORK_CREATE", "NETWORK_DESTROY", "NETWORK_UNDEFINE", "NETWORK_SET_AUTOSTART", "NETWORK_UPDATE",
		"NETWORK_SET_METADATA", "NETWORK_PORT_CREATE_XML", "NETWORK_PORT_DELETE", "NETWORK_PORT_SET_PARAMETERS",
	}
	for _, p := range allowed {
		if !ReadOnlyAllowed(p) {
			t.Errorf("%s refused on the read-only socket", p)
		}
	}
	for _, p := range denied {
		if ReadOnlyAllowed(p) {
			t.Errorf("%s allowed on the read-only socket", p)
		}
	}
}

// Snapshot queries are allowed on the read-only socket; create, revert
// and delete are not (libvirt's virCheckReadOnlyGoto in each).
func TestReadOnlySnapshotProcedures(t *testing.T) {
	for proc, want := range map[string]bool{
		"DOMAIN_SNAPSHOT_CREATE_XML":          false,
		"DOMAIN_REVERT_TO_SNAPSHOT":           false,
		"DOMAIN_SNAPSHOT_DELETE":              false,
		"DOMAIN_SNAPSHOT_GET_XML_DESC":        true,
		"DOMAIN_SNAPSHOT_NUM":                 true,
		"DOMAIN_SNAPSHOT_LIST_NAMES":          true,
		"DOMAIN_LIST_ALL_SNAPSHOTS":           true,
		"DOMAIN_SNAPSHOT_NUM_CHILDREN":        true,
		"DOMAIN_SNAPSHOT_LIST_CHILDREN_NAMES": true,
		"DOMAIN_SNAPSHOT_LIST_ALL_CHILDREN":   true,
		"DOMAIN_SNAPSHOT_LOOKUP_BY_NAME":      true,
		"DOMAIN_HAS_CURRENT_SNAPSHOT":         true,
		"DOMAIN_SNAPSHOT_GET_PARENT":          true,
		"DOMAIN_SNAPSHOT_CURRENT":             true,
		"DOMAIN_SNAPSHOT_IS_CURRENT":          true,
		"DOMAIN_SNAPSHOT_HAS_METADATA":        true,
	} {
		if got := ReadOnlyAllowed(proc); got != want {
			t.Errorf("ReadOnlyAllowed(%s) = %v, want %v", proc, got, want)
		}
	}
}

// Device hotplug, memory and vCPU changes are refused on the read-only
// socket (virCheckReadOnlyGoto in each of their entry points).
func TestReadOnlyDeviceProcedures(t *testing.T) {
	for _, proc := range []string{
		"DOMAIN_ATTACH_DEVICE", "DOMAIN_ATTACH_DEVICE_FLAGS", "DOMAIN_DETACH_DEVICE", "DOMAIN_DETACH_DEVICE_FLAGS",
		"DOMAIN_UPDATE_DEVICE_FLAGS", "DOMAIN_SET_MEMORY", "DOMAIN_SET_MEMORY_FLAGS", "DOMAIN_SET_MAX_MEMORY",
		"DOMAIN_SET_VCPUS", "DOMAIN_SET_VCPUS_FLAGS",
	} {
		if ReadOnlyAllowed(proc) {
			t.Errorf("ReadOnlyAllowed(%s) = true, want false", proc)
		}
	}
}
