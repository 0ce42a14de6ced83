// Package compat holds what makes govirtd libvirt: error codes and their
// wording, feature numbers, and (later) typed-parameter names and the
// migration cookie. Facts here come from libvirt 9.0's behaviour; the text of
// each message is what libvirt prints, because clients and scripts match it.
package compat

import (
	"errors"
	"fmt"

	libvirt "github.com/digitalocean/go-libvirt"
)

// Code is a libvirt error number (virErrorNumber). go-libvirt generates them.
type Code = libvirt.ErrorNumber

// Domain is a libvirt error domain (virErrorDomain): which part of libvirt
// raised the error. go-libvirt keeps these unexported, so the ones govirtd
// raises are listed here.
type Domain int32

// Error domains govirtd uses.
const (
	FromNone     Domain = 0
	FromRPC      Domain = 7
	FromXML      Domain = 5 // virxml.c: the XML helpers' checks (root element, enum attributes)
	FromConf     Domain = 9
	FromQEMU     Domain = 10
	FromRemote   Domain = 13
	FromDomain   Domain = 20 // domain config/state checks ("Requested operation is not valid" on a stopped domain)
	FromNetwork  Domain = 19
	FromStorage  Domain = 18
	FromNodeDev  Domain = 22
	FromNWFilter Domain = 33
	// FromDomainSnapshot is VIR_FROM_DOMAIN_SNAPSHOT: snapshot XML parsing.
	FromDomainSnapshot Domain = 35
	FromSecret         Domain = 30
	FromAccess         Domain = 55
)

// Error is a libvirt error as it travels to a client in a remote_error.
type Error struct {
	Code   Code
	Domain Domain
	// Detail is the driver's part of the message (libvirt's str2): what is
	// printed after the code's fixed prefix.
	Detail string
	// Int1 carries errno for system errors (VIR_ERR_SYSTEM_ERROR), -1 otherwise.
	Int1 int32
	// Err is an underlying Go error kept for logs and errors.Is; clients
	// never see it.
	Err error
	// Verbatim marks an error relayed from another libvirt daemon: Detail
	// is already the whole message and is passed on unchanged.
	Verbatim bool
}

// Errorf makes an Error whose detail is formatted like fmt.Sprintf.
func Errorf(code Code, domain Domain, format string, args ...any) *Error {
	return &Error{Code: code, Domain: domain, Detail: fmt.Sprintf(format, args...), Int1: -1}
}

// Template is libvirt's printf template for the message (libvirt's str1).
func (e *Error) Template() string {
	if e.Verbatim {
		return "%s"
	}
	t, ok := templates[e.Code]
	if !ok {
		return "%s"
	}
	if e.Detail == "" {
		return t.bare
	}
	return t.withInfo
}

// Message is the full text a client shows (libvirt's message).
func (e *Error) Message() string {
	t := e.Template()
	if e.Detail == "" {
		return t
	}
	return fmt.Sprintf(t, e.Detail)
}

func (e *Error) Error() string { return e.Message() }

func (e *Error) Unwrap() error { return e.Err }

// As finds the libvirt error in err's chain. An error without one is an
// internal error: a bug or an unexpected system failure, reported as libvirt
// reports its own ("internal error: ...").
func As(err error) *Error {
	var le *Error
	if errors.As(err, &le) {
		return le
	}
	return &Error{Code: libvirt.ErrInternalError, Domain: FromNone, Detail: err.Error(), Int1: -1, Err: err}
}

// Is reports whether err carries a libvirt error with this code.
func Is(err error, code Code) bool {
	var le *Error
	return errors.As(err, &le) && le.Code == code
}

type template struct{ bare, withInfo string }

// templates holds libvirt's wording (virErrorMsgStrings) for the codes
// govirtd raises. The message a client prints is withInfo with the detail
// filled in, or bare when there is no detail.
var templates = map[Code]template{
	libvirt.ErrInternalError:        {"internal error", "internal error: %s"},
	libvirt.ErrNoSupport:            {"this function is not supported by the connection driver", "this function is not supported by the connection driver: %s"},
	libvirt.ErrNoConnect:            {"no connection driver available", "no connection driver available for %s"},
	libvirt.ErrInvalidConn:          {"invalid connection pointer in", "invalid connection pointer in %s"},
	libvirt.ErrInvalidArg:           {"invalid argument", "invalid argument: %s"},
	libvirt.ErrOperationFailed:      {"operation failed", "operation failed: %s"},
	libvirt.ErrXMLError:             {"XML description is invalid or not well formed", "XML error: %s"},
	libvirt.ErrXMLDetail:            {"parser error", "%s"},
	libvirt.ErrNoName:               {"missing name information", "missing name information in %s"},
	libvirt.ErrDomExist:             {"this domain exists already", "domain %s exists already"},
	libvirt.ErrOperationDenied:      {"operation forbidden for read only access", "operation forbidden: %s"},
	libvirt.ErrSystemError:          {"system call error", "%s"},
	libvirt.ErrRPC:                  {"RPC error", "%s"},
	libvirt.ErrNoDomain:             {"Domain not found", "Domain not found: %s"},
	libvirt.ErrNoNetwork:            {"Network not found", "Network not found: %s"},
	libvirt.ErrAuthFailed:           {"authentication failed", "authentication failed: %s"},
	libvirt.ErrNoStoragePool:        {"Storage pool not found", "Storage pool not found: %s"},
	libvirt.ErrNoStorageVol:         {"Storage volume not found", "Storage volume not found: %s"},
	libvirt.ErrStorageVolExist:      {"this storage volume exists already", "storage volume %s exists already"},
	libvirt.ErrOverflow:             {"numerical overflow", "numerical overflow: %s"},
	libvirt.ErrNoNodeDevice:         {"Node device not found", "Node device not found: %s"},
	libvirt.ErrOperationInvalid:     {"Requested operation is not valid", "Requested operation is not valid: %s"},
	libvirt.ErrNoInterface:          {"Interface not found", "Interface not found: %s"},
	libvirt.ErrNoNwfilter:           {"Network filter not found", "Network filter not found: %s"},
	libvirt.ErrNoSecret:             {"Secret not found", "Secret not found: %s"},
	libvirt.ErrInvalidSecret:        {"Invalid secret", "Invalid secret: %s"},
	libvirt.ErrConfigUnsupported:    {"unsupported configuration", "unsupported configuration: %s"},
	libvirt.ErrOperationTimeout:     {"Timed out during operation", "Timed out during operation: %s"},
	libvirt.ErrNoDomainSnapshot:     {"Domain snapshot not found", "Domain snapshot not found: %s"},
	libvirt.ErrArgumentUnsupported:  {"argument unsupported", "argument unsupported: %s"},
	libvirt.ErrOperationAborted:     {"operation aborted", "operation aborted: %s"},
	libvirt.ErrMigratePersistFailed: {"Failed to make domain persistent after migration", "Failed to make domain persistent after migration: %s"},
	libvirt.ErrMigrateUnsafe:        {"Unsafe migration", "Unsafe migration: %s"},
	libvirt.ErrOperationUnsupported: {"Operation not supported", "Operation not supported: %s"},
	libvirt.ErrMultipleDomains:      {"multiple matching domains found", "multiple matching domains found: %s"},
	libvirt.ErrNoDomainMetadata:     {"metadata not found", "metadata not found: %s"},
	libvirt.ErrSnapshotRevertRisky:  {"revert requires force", "revert requires force: %s"},
	libvirt.ErrAgentUnresponsive:    {"Guest agent is not responding", "Guest agent is not responding: %s"},
	libvirt.ErrDeviceMissing:        {"device not found", "device not found: %s"},
}

// NoSupport is libvirt's answer to a procedure the driver does not implement.
// libvirt names the public API function in the detail (e.g.
// "virDomainGetBlkioParameters"); govirtd names the procedure.
func NoSupport(what string) *Error {
	return Errorf(libvirt.ErrNoSupport, FromNone, "%s", what)
}

// ReadOnly is the error for a state-changing call on a read-only connection.
func ReadOnly(what string) *Error {
	return Errorf(libvirt.ErrOperationDenied, FromNone, "%s", what)
}
