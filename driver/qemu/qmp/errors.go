package qmp

import (
	"errors"
)

// ErrDisconnected reports that the monitor connection is gone: QEMU exited,
// closed the socket, the socket broke, or Close was called. The Monitor is
// unusable afterwards; the driver learns the rest (exit status) from the
// process itself.
var ErrDisconnected = errors.New("qmp: monitor disconnected")

// QMP error classes (QEMU's QapiErrorClass). Almost every QEMU error is
// GenericError; the others exist so that callers can branch without parsing
// descriptions.
const (
	ClassGenericError    = "GenericError"
	ClassCommandNotFound = "CommandNotFound"
	ClassDeviceNotActive = "DeviceNotActive" // e.g. query-balloon without a balloon
	ClassDeviceNotFound  = "DeviceNotFound"
	ClassKVMMissingCap   = "KVMMissingCap"
)

// CommandError is QEMU's answer {"error": {"class": ..., "desc": ...}} to a
// command. The command reached QEMU and was rejected; the monitor is still
// usable.
type CommandError struct {
	Command string
	Class   string
	Desc    string
}

func (e *CommandError) Error() string { return e.Class + ": " + e.Desc }

// IsCommandNotFound reports whether err is QEMU rejecting an unknown command,
// which callers use to feature-probe older or differently built QEMUs.
func IsCommandNotFound(err error) bool {
	var ce *CommandError
	return errors.As(err, &ce) && ce.Class == ClassCommandNotFound
}
