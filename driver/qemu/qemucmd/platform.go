package qemucmd

import (
	"fmt"

	"libvirt.org/go/libvirtxml"
)

// This file builds the devices of the PC platform besides storage,
// network and display: sound cards, watchdogs, RNGs and IOThreads.

// iothreads declares the IOThread objects right after -smp, as libvirt
// does, with ids iothreadN.
func (b *builder) iothreads() error {
	d := b.dom
	var ids []uint
	if d.IOThreadIDs != nil {
		for _, t := range d.IOThreadIDs.IOThreads {
			if t.PoolMin != nil || t.PoolMax != nil || t.Poll != nil {
				return unsupported("iothread %d: pool and polling settings", t.ID)
			}
			ids = append(ids, t.ID)
		}
	}
	for n := uint(1); uint(len(ids)) < d.IOThreads; n++ {
		taken := false
		for _, id := range ids {
			taken = taken || id == n
		}
		if !taken {
			ids = append(ids, n)
		}
	}
	for _, id := range ids {
		b.arg("-object", newProps().add("qom-type", "iothread").add("id", fmt.Sprintf("iothread%d", id)).String())
	}
	return nil
}

// sounds follows qemuBuildSoundCommandLine: HDA controllers get one
// duplex codec on their bus, the other cards take the audiodev directly.
func (b *builder) sounds() error {
	for i := range b.dom.Devices.Sounds {
		s := &b.dom.Devices.Sounds[i]
		id := alias(s.Alias)
		if len(s.Codec) > 0 || s.MultiChannel != "" || s.Streams != 0 || s.Driver != nil {
			return unsupported("sound '%s': codec/multichannel/driver settings", id)
		}
		audio, err := b.defaultAudio()
		if err != nil {
			return err
		}
		if s.Audio != nil && s.Audio.ID != 0 {
			audio = fmt.Sprintf("audio%d", s.Audio.ID)
		}
		p := newProps()
		hda := false
		switch s.Model {
		case "ich6":
			p.add("driver", "intel-hda").add("id", id)
			hda = true
		case "ich9":
			p.add("driver", "ich9-intel-hda").add("id", id)
			hda = true
		case "ac97":
			p.add("driver", "AC97").add("id", id).add("audiodev", audio)
		case "es1370":
			p.add("driver", "ES1370").add("id", id).add("audiodev", audio)
		default:
			return unsupported("sound '%s': model '%s'", id, s.Model)
		}
		if err := b.addPCI(p, s.Address, "sound '"+id+"'"); err != nil {
			return err
		}
		b.device(p)
		if hda {
			b.device(newProps().add("driver", "hda-duplex").add("id", id+"-codec0").
				add("bus", id+".0").add("cad", 0).add("audiodev", audio))
		}
	}
	return nil
}

var watchdogActions = map[string]bool{"reset": true, "shutdown": true, "poweroff": true, "pause": true, "none": true, "inject-nmi": true}

// watchdogs: the ICH9 TCO watchdog is part of q35 machines (libvirt only
// switches its reboot strap), the others are devices of their own.
func (b *builder) watchdogs() error {
	for i := range b.dom.Devices.Watchdogs {
		w := &b.dom.Devices.Watchdogs[i]
		id := alias(w.Alias)
		action := w.Action
		if action == "" {
			action = "reset"
		}
		if !watchdogActions[action] {
			return unsupported("watchdog action '%s'", action)
		}
		switch w.Model {
		case "itco":
			if !b.q35 {
				return unsupported("watchdog model 'itco' outside q35")
			}
			b.arg("-global", "ICH9-LPC.noreboot=off")
		case "i6300esb":
			p := newProps().add("driver", "i6300esb").add("id", id)
			if err := b.addPCI(p, w.Address, "watchdog '"+id+"'"); err != nil {
				return err
			}
			b.device(p)
		case "ib700":
			b.device(newProps().add("driver", "ib700").add("id", id))
		default:
			return unsupported("watchdog model '%s'", w.Model)
		}
		b.arg("-watchdog-action", action)
	}
	return nil
}

// rngs follows qemuBuildRNGCommandLine: the backend object (with its
// chardev for EGD) comes right before the device.
func (b *builder) rngs() error {
	for i := range b.dom.Devices.RNGs {
		r := &b.dom.Devices.RNGs[i]
		id := alias(r.Alias)
		if r.Model != "virtio" || r.Driver != nil || r.Rate != nil || r.Backend == nil {
			return unsupported("rng '%s': only virtio without driver/rate settings", id)
		}
		obj := "obj" + id
		switch be := r.Backend; {
		case be.Random != nil:
			dev := be.Random.Device
			if dev == "" {
				dev = "/dev/urandom"
			}
			b.arg("-object", newProps().add("qom-type", "rng-random").add("id", obj).add("filename", dev).String())
		case be.EGD != nil:
			ch, err := b.egdChardev("char"+id, be.EGD.Source, id)
			if err != nil {
				return err
			}
			b.arg("-chardev", ch)
			b.arg("-object", newProps().add("qom-type", "rng-egd").add("id", obj).add("chardev", "char"+id).String())
		default:
			return unsupported("rng '%s': backend", id)
		}
		p := newProps().add("driver", "virtio-rng-pci").add("rng", obj).add("id", id)
		if err := b.addPCI(p, r.Address, "rng '"+id+"'"); err != nil {
			return err
		}
		b.device(p)
	}
	return nil
}

// egdChardev connects to an entropy gathering daemon.
func (b *builder) egdChardev(id string, src *libvirtxml.DomainChardevSource, owner string) (string, error) {
	switch {
	case src != nil && src.TCP != nil && src.TCP.Mode != "bind":
		return fmt.Sprintf("socket,id=%s,host=%s,port=%s", id, src.TCP.Host, src.TCP.Service), nil
	case src != nil && src.UNIX != nil && src.UNIX.Mode != "bind":
		return fmt.Sprintf("socket,id=%s,path=%s", id, src.UNIX.Path), nil
	}
	return "", unsupported("rng '%s': EGD source other than a tcp or unix client", owner)
}
