package rpc

//go:generate go run ./internal/procgen -mode rpc -o procedures.gen.go

import "strconv"

// Procedure is a procedure number of the remote program.
type Procedure uint32

// String returns libvirt's name of the procedure (e.g. "CONNECT_OPEN"), or
// its number for procedures this build does not know.
func (p Procedure) String() string {
	if n, ok := procNames[p]; ok {
		return n
	}
	return "PROC_" + strconv.FormatUint(uint64(p), 10)
}

// Known reports whether p is a procedure of libvirt's remote program.
func (p Procedure) Known() bool {
	_, ok := procNames[p]
	return ok
}

// API returns the libvirt API function behind the procedure, e.g.
// "virDomainLookupByName" (derived from go-libvirt's name for it).
func (p Procedure) API() string {
	if n, ok := procAPIs[p]; ok {
		return n
	}
	return p.String()
}
