package server

import "github.com/govirtd/govirtd/rpc"

// inlineProcs are the calls the connection's reader runs itself instead of
// passing them to a worker. Each must be answered from the daemon's memory
// without waiting: no QEMU monitor, no job lock, no disk, no network. A
// call that blocked here would stop the connection's reading (keepalive
// included) until it returned, so anything that may wait stays off the list.
var inlineProcs = map[rpc.Procedure]bool{
	rpc.ProcConnectGetLibVersion:       true,
	rpc.ProcConnectGetVersion:          true,
	rpc.ProcConnectGetHostname:         true,
	rpc.ProcConnectGetType:             true,
	rpc.ProcConnectGetUri:              true,
	rpc.ProcConnectIsSecure:            true,
	rpc.ProcConnectSupportsFeature:     true,
	rpc.ProcConnectListAllDomains:      true,
	rpc.ProcConnectNumOfDomains:        true,
	rpc.ProcConnectListDomains:         true,
	rpc.ProcConnectNumOfDefinedDomains: true,
	rpc.ProcConnectListDefinedDomains:  true,
	rpc.ProcDomainLookupByName:         true,
	rpc.ProcDomainLookupByUUID:         true,
	rpc.ProcDomainLookupByID:           true,
	rpc.ProcDomainGetXMLDesc:           true,
	rpc.ProcDomainGetInfo:              true,
	rpc.ProcDomainGetState:             true,
	rpc.ProcDomainIsActive:             true,
	rpc.ProcDomainIsPersistent:         true,
	rpc.ProcDomainIsUpdated:            true,
	rpc.ProcDomainGetAutostart:         true,
}
