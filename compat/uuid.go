package compat

import (
	"errors"
	"fmt"
)

// ErrBadUUID is returned for a string that is not a UUID.
var ErrBadUUID = errors.New("malformed UUID")

// ParseUUID reads a UUID the way libvirt's virUUIDParse does: 32 hex
// digits, '-' allowed anywhere between byte pairs, white space allowed
// around the whole.
func ParseUUID(s string) ([16]byte, error) {
	var u [16]byte
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	for n := 0; n < 16; n++ {
		for i < len(s) && s[i] == '-' {
			i++
		}
		if i+2 > len(s) {
			return [16]byte{}, fmt.Errorf("%w %q: expected 32 hexadecimal digits", ErrBadUUID, s)
		}
		hi, ok1 := hexVal(s[i])
		lo, ok2 := hexVal(s[i+1])
		if !ok1 || !ok2 {
			return [16]byte{}, fmt.Errorf("%w %q: %q is not a hexadecimal byte", ErrBadUUID, s, s[i:i+2])
		}
		u[n] = hi<<4 | lo
		i += 2
	}
	for ; i < len(s); i++ {
		if !isSpace(s[i]) {
			return [16]byte{}, fmt.Errorf("%w %q: unexpected characters after 32 hexadecimal digits", ErrBadUUID, s)
		}
	}
	return u, nil
}

// FormatUUID writes a UUID in its canonical form.
func FormatUUID(u [16]byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func hexVal(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
