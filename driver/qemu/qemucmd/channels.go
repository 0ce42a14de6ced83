package qemucmd

import (
	"fmt"

	"libvirt.org/go/libvirtxml"
)

// spiceChannelNames are the names libvirt gives spicevmc chardevs by the
// port they serve (qemuBuildChrChardevStr).
var spiceChannelNames = map[string]string{"com.redhat.spice.0": "vdagent"}

// channels builds virtio-serial ports (qemuBuildChannelsCommandLine): a
// chardev, then a virtserialport on the controller's bus. A unix socket
// is created by the caller and passed as a listening descriptor (see
// PassedFile.Listen), so the guest agent socket exists before QEMU runs.
func (b *builder) channels() error {
	for i := range b.dom.Devices.Channels {
		ch := &b.dom.Devices.Channels[i]
		id := alias(ch.Alias)
		if ch.Target == nil || ch.Target.VirtIO == nil {
			return unsupported("channel '%s': target type other than virtio", id)
		}
		if ch.Log != nil || ch.Protocol != nil {
			return unsupported("channel '%s': <log>/<protocol>", id)
		}
		name := ch.Target.VirtIO.Name
		src := ch.Source
		var chardev string
		switch {
		case src == nil:
			return unsupported("channel '%s' has no source", id)
		case src.UNIX != nil:
			if src.UNIX.Path == "" {
				return unsupported("channel '%s': unix socket without a path (paths are chosen at start)", id)
			}
			if src.UNIX.Mode != "" && src.UNIX.Mode != "bind" {
				return unsupported("channel '%s': unix socket mode '%s'", id, src.UNIX.Mode)
			}
			fd := b.nextFD
			b.nextFD++
			b.cmd.Files = append(b.cmd.Files, PassedFile{FD: fd, Path: src.UNIX.Path, Listen: true, Opaque: id + "-source"})
			chardev = fmt.Sprintf("socket,id=char%s,fd=%d,server=on,wait=off", id, fd)
		case src.SpiceVMC != nil:
			vmc, ok := spiceChannelNames[name]
			if !ok {
				return unsupported("channel '%s': spicevmc channel '%s'", id, name)
			}
			chardev = fmt.Sprintf("spicevmc,id=char%s,name=%s", id, vmc)
		case src.Pty != nil:
			chardev = "pty,id=char" + id
		default:
			return unsupported("channel '%s': source type", id)
		}
		b.arg("-chardev", chardev)
		p, err := b.virtioSerialPort(ch.Address, id)
		if err != nil {
			return err
		}
		p.add("chardev", "char"+id).add("id", id).addIf(name != "", "name", name)
		b.device(p)
	}
	return nil
}

func (b *builder) virtioSerialPort(addr *libvirtxml.DomainAddress, id string) (*props, error) {
	if addr == nil || addr.VirtioSerial == nil || addr.VirtioSerial.Port == nil {
		return nil, unsupported("channel '%s' has no virtio-serial address (addresses are assigned at define time)", id)
	}
	a := addr.VirtioSerial
	ctrl, err := b.controllerAlias("virtio-serial", uval(a.Controller))
	if err != nil {
		return nil, fmt.Errorf("channel '%s': %w", id, err)
	}
	return newProps().add("driver", "virtserialport").add("bus", fmt.Sprintf("%s.%d", ctrl, uval(a.Bus))).add("nr", *a.Port), nil
}
