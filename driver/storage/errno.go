package storage

import (
	"errors"
	"syscall"
)

// errnoOf is the errno under err, 0 if there is none.
func errnoOf(err error) syscall.Errno {
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	return 0
}

// errnoText is what libvirt appends to a system error: strerror(errno),
// which Go's Errno text is, with its first letter upper-cased as glibc
// writes it ("No such file or directory").
func errnoText(err error) string {
	if e := errnoOf(err); e != 0 {
		s := e.Error()
		if s != "" && s[0] >= 'a' && s[0] <= 'z' {
			s = string(s[0]-'a'+'A') + s[1:]
		}
		return s
	}
	return err.Error()
}
