module github.com/govirtd/govirtd

go 1.26.8

require (
	github.com/davecgh/go-xdr v0.0.0-20161123171359-e6a2ba005892
	github.com/digitalocean/go-libvirt v0.0.0-20261013170128-efbbdf578ac8
	golang.org/x/sys v0.41.0
	libvirt.org/go/libvirtxml v1.12008.0
)

require golang.org/x/crypto v0.48.0 // indirect
