package rpc

import (
	libvirt "github.com/digitalocean/go-libvirt"
)

// RemoteError is the body of an error reply (remote_error in
// remote_protocol.x). go-libvirt parses it by hand, so the struct is ours.
type RemoteError struct {
	Code    int32
	Domain  int32
	Message libvirt.OptString
	Level   int32
	Dom     libvirt.OptDomain
	Str1    libvirt.OptString
	Str2    libvirt.OptString
	Str3    libvirt.OptString
	Int1    int32
	Int2    int32
	Net     libvirt.OptNetwork
}
