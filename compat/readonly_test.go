package compat

import "testing"

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
