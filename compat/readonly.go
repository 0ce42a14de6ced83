package compat

import "strings"

// ReadOnlyAllowed reports whether a client of the read-only socket may call
// the procedure (libvirt name without REMOTE_PROC_, e.g. "DOMAIN_GET_INFO").
//
// libvirt checks this per API entry point (virCheckReadOnlyGoto); the rule it
// follows is that queries are allowed and anything that changes state is
// not. govirtd derives it from the procedure name and refuses by default, so
// a procedure added later is denied until it is known to be a query.
func ReadOnlyAllowed(proc string) bool {
	if readOnlyDenied[proc] {
		return false
	}
	if readOnlyExtra[proc] {
		return true
	}
	for _, p := range readOnlyPrefixes {
		if strings.HasPrefix(proc, p) {
			return true
		}
	}
	for _, s := range readOnlyInfixes {
		if strings.Contains(proc, s) {
			return true
		}
	}
	return false
}

// Name shapes of queries.
var (
	readOnlyPrefixes = []string{"AUTH_", "CONNECT_GET_", "CONNECT_LIST_", "CONNECT_NUM_OF_", "CONNECT_IS_", "NODE_GET_", "NODE_LIST_", "NODE_NUM_OF_"}
	readOnlyInfixes  = []string{"_LOOKUP_BY_", "_GET_", "_IS_", "_LIST_", "_NUM_OF_", "_HAS_", "_NUM", "_EVENT_REGISTER", "_EVENT_DEREGISTER", "_EVENTS_REGISTER", "_EVENTS_DEREGISTER", "_EVENT_CALLBACK_REGISTER", "_EVENT_CALLBACK_DEREGISTER"}
)

// readOnlyExtra are queries whose names do not look like one.
var readOnlyExtra = map[string]bool{
	"CONNECT_OPEN":                         true,
	"CONNECT_CLOSE":                        true,
	"CONNECT_SUPPORTS_FEATURE":             true,
	"CONNECT_REGISTER_CLOSE_CALLBACK":      true,
	"CONNECT_UNREGISTER_CLOSE_CALLBACK":    true,
	"CONNECT_COMPARE_CPU":                  true,
	"CONNECT_BASELINE_CPU":                 true,
	"CONNECT_COMPARE_HYPERVISOR_CPU":       true,
	"CONNECT_BASELINE_HYPERVISOR_CPU":      true,
	"DOMAIN_MIGRATE_GET_MAX_SPEED":         true,
	"DOMAIN_MIGRATE_GET_MAX_DOWNTIME":      true,
	"DOMAIN_MIGRATE_GET_COMPRESSION_CACHE": true,
	"DOMAIN_SNAPSHOT_CURRENT":              true,
	"DOMAIN_SNAPSHOT_LIST_NAMES":           true,
	"DOMAIN_SNAPSHOT_NUM":                  true,
	"DOMAIN_BLOCK_STATS":                   true,
	"DOMAIN_BLOCK_STATS_FLAGS":             true,
	"DOMAIN_INTERFACE_STATS":               true,
	"DOMAIN_MEMORY_STATS":                  true,
	// Only the guest agent source is refused (virDomainInterfaceAddresses);
	// the handler checks it.
	"DOMAIN_INTERFACE_ADDRESSES": true,
}

// readOnlyDenied are procedures whose names look like queries but which
// libvirt refuses on a read-only connection: they reveal secrets, open
// consoles, or grant control.
var readOnlyDenied = map[string]bool{
	"DOMAIN_GET_FSINFO":               true,
	"DOMAIN_GET_GUEST_INFO":           true,
	"DOMAIN_GET_HOSTNAME":             true,
	"DOMAIN_GET_TIME":                 true,
	"DOMAIN_GET_LAUNCH_SECURITY_INFO": true,
	"SECRET_GET_VALUE":                true,
	"DOMAIN_GET_GUEST_VCPUS":          true,
	"DOMAIN_AUTHORIZED_SSH_KEYS_GET":  true,
}
