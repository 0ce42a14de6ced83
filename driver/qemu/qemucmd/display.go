package qemucmd

import (
	"fmt"
	"strings"

	"libvirt.org/go/libvirtxml"
)

// audioIDs returns the audio backends to create. libvirt 9.0 adds
// <audio id='1' type='none'/> (or type='spice' with a SPICE display) at
// define time when the definition has none; the migratable XML omits the
// default 'none' one again, so it is supplied here too.
func (b *builder) audioIDs() ([]int, []string, error) {
	d := b.dom.Devices
	if len(d.Audios) == 0 {
		return []int{1}, []string{"none"}, nil
	}
	var ids []int
	var drivers []string
	for _, a := range d.Audios {
		switch {
		case a.TimerPeriod != 0:
			return nil, nil, unsupported("audio %d: timerPeriod", a.ID)
		case a.None != nil && a.None.Input == nil && a.None.Output == nil:
			drivers = append(drivers, "none")
		case a.SPICE != nil && a.SPICE.Input == nil && a.SPICE.Output == nil:
			drivers = append(drivers, "spice")
		default:
			return nil, nil, unsupported("audio %d: only types 'none' and 'spice' without settings are supported", a.ID)
		}
		ids = append(ids, a.ID)
	}
	return ids, drivers, nil
}

func (b *builder) audio() error {
	ids, drivers, err := b.audioIDs()
	if err != nil {
		return err
	}
	for i, id := range ids {
		b.arg("-audiodev", newProps().add("id", fmt.Sprintf("audio%d", id)).add("driver", drivers[i]).String())
	}
	return nil
}

// defaultAudio is the audiodev a device without an explicit <audio> uses:
// the first one.
func (b *builder) defaultAudio() (string, error) {
	ids, _, err := b.audioIDs()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("audio%d", ids[0]), nil
}

// graphicsListen returns the one address a display listens on.
func graphicsListen(listen string, listeners []libvirtxml.DomainGraphicListener, what string) (string, error) {
	for _, l := range listeners {
		if l.Address == nil {
			return "", unsupported("%s listen type other than address", what)
		}
		if listen == "" {
			listen = l.Address.Address
		}
	}
	if listen == "" {
		listen = "127.0.0.1" // libvirt's default vnc_listen/spice_listen
	}
	return listen, nil
}

func (b *builder) graphics() error {
	g := b.dom.Devices.Graphics
	if len(g) > 1 {
		return unsupported("more than one graphics display")
	}
	for i := range g {
		switch {
		case g[i].VNC != nil:
			if err := b.vnc(&g[i]); err != nil {
				return err
			}
		case g[i].Spice != nil:
			if err := b.spice(g[i].Spice); err != nil {
				return err
			}
		default:
			return unsupported("graphics other than VNC and SPICE")
		}
	}
	return nil
}

func (b *builder) vnc(g *libvirtxml.DomainGraphic) error {
	v := g.VNC
	if v.Socket != "" || v.WebSocket != 0 || v.Keymap != "" || v.SharePolicy != "" || v.Passwd != "" ||
		v.PowerControl != "" || v.Wait != "" {
		return unsupported("VNC socket/websocket/keymap/sharePolicy/passwd settings")
	}
	if v.Port < 5900 {
		// With autoport libvirt picks the port at start and records it in
		// the live definition (domainxml.PrepareLive).
		return unsupported("VNC display without an allocated port (port %d)", v.Port)
	}
	listen, err := graphicsListen(v.Listen, v.Listeners, "VNC")
	if err != nil {
		return err
	}
	if strings.Contains(listen, ":") {
		listen = "[" + listen + "]"
	}
	opt := fmt.Sprintf("%s:%d", listen, v.Port-5900)
	audio, err := b.defaultAudio()
	if err != nil {
		return err
	}
	if g.Audio != nil && g.Audio.ID != 0 {
		audio = fmt.Sprintf("audio%d", g.Audio.ID)
	}
	b.arg("-vnc", opt+",audiodev="+audio)
	return nil
}

// spice follows qemuBuildGraphicsSPICECommandLine for a plain-text
// display without TLS or password: QEMU is told ticketing is off, and
// seamless migration is on because libvirt migrates SPICE clients.
func (b *builder) spice(s *libvirtxml.DomainGraphicSpice) error {
	if s.TLSPort > 0 || s.DefaultMode != "" && s.DefaultMode != "any" || len(s.Channel) > 0 || s.Passwd != "" ||
		s.Keymap != "" || s.GL != nil || s.Mouse != nil || s.ClipBoard != nil || s.FileTransfer != nil {
		return unsupported("SPICE TLS/password/channel/mouse/clipboard/GL settings")
	}
	if s.Port <= 0 {
		return unsupported("SPICE display without an allocated port (port %d)", s.Port)
	}
	listen, err := graphicsListen(s.Listen, s.Listeners, "SPICE")
	if err != nil {
		return err
	}
	// The compression settings, in libvirt's order; virt-install writes
	// <image compression='off'/> for a display on the local machine.
	var compression string
	for _, c := range []struct{ opt, val string }{
		{"image-compression", spiceSetting(s.Image != nil, func() string { return s.Image.Compression })},
		{"jpeg-wan-compression", spiceSetting(s.JPEG != nil, func() string { return s.JPEG.Compression })},
		{"zlib-glz-wan-compression", spiceSetting(s.ZLib != nil, func() string { return s.ZLib.Compression })},
		{"playback-compression", spiceSetting(s.Playback != nil, func() string { return s.Playback.Compression })},
		{"streaming-video", spiceSetting(s.Streaming != nil, func() string { return s.Streaming.Mode })},
	} {
		if c.val != "" {
			compression += "," + c.opt + "=" + c.val
		}
	}
	b.arg("-spice", fmt.Sprintf("port=%d,addr=%s,disable-ticketing=on%s,seamless-migration=on", s.Port, listen, compression))
	return nil
}

// spiceSetting is an optional SPICE element's attribute ("" when absent).
func spiceSetting(present bool, value func() string) string {
	if !present {
		return ""
	}
	return value()
}

func (b *builder) videos() error {
	for i := range b.dom.Devices.Videos {
		v := &b.dom.Devices.Videos[i]
		id := alias(v.Alias)
		m := v.Model
		if v.Driver != nil || m.Accel != nil || m.Resolution != nil || m.Heads > 1 || m.Blob != "" || m.EDID != "" || m.VRam64 != 0 {
			return unsupported("video '%s': driver/acceleration/resolution/heads settings", id)
		}
		primary := i == 0
		p := newProps()
		switch m.Type {
		case "none":
			continue
		case "vga", "cirrus":
			if !primary {
				return unsupported("video '%s': secondary %s video devices", id, m.Type)
			}
			if m.Type == "vga" {
				p.add("driver", "VGA").add("id", id)
				if m.VRam > 0 {
					p.add("vgamem_mb", m.VRam/1024)
				}
			} else {
				p.add("driver", "cirrus-vga").add("id", id)
			}
		case "qxl":
			// qemuBuildDeviceVideoCmd: sizes in bytes except the MiB ones.
			driver := "qxl-vga"
			if !primary {
				driver = "qxl"
			}
			p.add("driver", driver).add("id", id).add("max_outputs", max(m.Heads, 1)).
				add("ram_size", uint64(m.Ram)*1024).add("vram_size", uint64(m.VRam)*1024).
				add("vram64_size_mb", 0)
			if primary {
				p.add("vgamem_mb", m.VGAMem/1024)
			}
		case "virtio":
			driver := "virtio-vga"
			if !primary {
				driver = "virtio-gpu-pci"
			}
			p.add("driver", driver).add("id", id).add("max_outputs", max(m.Heads, 1))
		default:
			return unsupported("video '%s': model '%s'", id, m.Type)
		}
		if err := b.addPCI(p, v.Address, "video '"+id+"'"); err != nil {
			return err
		}
		b.device(p)
	}
	return nil
}
