package domainxml

import (
	"fmt"
	"path/filepath"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
)

// Runtime holds what the driver decides when a domain starts and libvirt
// records in the live definition.
type Runtime struct {
	// ChannelDir is where unix channels without a path get their socket
	// (libvirt: /var/lib/libvirt/qemu/channel/target/domain-ID-NAME).
	ChannelDir string
	// VNCListen and SpiceListen are qemu.conf's vnc_listen and
	// spice_listen; "" means libvirt's default, 127.0.0.1.
	VNCListen, SpiceListen string
	// BackingChain reads the images under a disk's image (BackingChain);
	// nil skips probing.
	BackingChain func(path, format string) ([]Image, error)
	// ResolveVolume finds a storage pool volume for a disk of
	// type='volume'; nil: such disks cannot start.
	ResolveVolume func(pool, vol string) (VolumeSource, error)
}

// PortReserver hands out display ports (qemu.conf's
// remote_display_port_min..max, libvirt's remotePorts allocator).
type PortReserver interface {
	Reserve(what string) (int, error)
}

// PrepareLive fills in, in a copy of the persistent definition about to
// start, what qemuProcessPrepareDomain and qemuProcessPrepareHost decide:
// display ports for autoport graphics, the listen address, and the socket
// paths of unix channels. It runs after AssignAliases and before the
// command line is built.
func PrepareLive(d *libvirtxml.Domain, rt Runtime, ports PortReserver) error {
	if d.Devices == nil {
		return nil
	}
	dv := d.Devices
	for i := range dv.Disks {
		if err := prepareVolume(&dv.Disks[i], rt); err != nil {
			return err
		}
		if err := prepareChain(&dv.Disks[i], rt); err != nil {
			return err
		}
	}
	numberImages(dv)
	for i := range dv.Graphics {
		if err := prepareGraphics(&dv.Graphics[i], rt, ports); err != nil {
			return err
		}
	}
	for i := range dv.Channels {
		ch := &dv.Channels[i]
		// virtio ports report whether the guest opened them; until the
		// guest says so (VSERPORT_CHANGE), libvirt shows disconnected.
		if ch.Target != nil && ch.Target.VirtIO != nil && ch.Target.VirtIO.State == "" {
			ch.Target.VirtIO.State = "disconnected"
		}
		if ch.Source == nil || ch.Source.UNIX == nil || ch.Source.UNIX.Path != "" {
			continue
		}
		// qemuDomainPrepareChannel: a virtio channel without a path gets
		// one named after its target in the domain's channel directory.
		if ch.Target == nil || ch.Target.VirtIO == nil || ch.Target.VirtIO.Name == "" {
			return unsupported("channel %d: a unix socket without a path needs a virtio target name", i)
		}
		if rt.ChannelDir == "" {
			return fmt.Errorf("channel %d: no channel directory", i)
		}
		ch.Source.UNIX.Path = filepath.Join(rt.ChannelDir, ch.Target.VirtIO.Name)
		if ch.Source.UNIX.Mode == "" {
			ch.Source.UNIX.Mode = "bind"
		}
	}
	return nil
}

func listenOr(configured string) string {
	if configured == "" {
		return "127.0.0.1"
	}
	return configured
}

// prepareGraphics follows qemuProcessGraphicsReservePorts,
// qemuProcessVNCAllocatePorts/qemuProcessSPICEAllocatePorts and
// qemuProcessGraphicsSetupListen: an autoport display takes the next free
// port, and an address listen without an address takes qemu.conf's.
func prepareGraphics(g *libvirtxml.DomainGraphic, rt Runtime, ports PortReserver) error {
	var port *int
	var autoport string
	var listen *string
	var listeners []libvirtxml.DomainGraphicListener
	def := ""
	switch {
	case g.VNC != nil:
		port, autoport, listen, listeners, def = &g.VNC.Port, g.VNC.AutoPort, &g.VNC.Listen, g.VNC.Listeners, listenOr(rt.VNCListen)
		if g.VNC.Socket != "" {
			return nil
		}
	case g.Spice != nil:
		port, autoport, listen, listeners, def = &g.Spice.Port, g.Spice.AutoPort, &g.Spice.Listen, g.Spice.Listeners, listenOr(rt.SpiceListen)
	default:
		return nil
	}
	if autoport == "yes" || *port <= 0 {
		p, err := ports.Reserve("display")
		if err != nil {
			return err
		}
		*port = p
	}
	for i := range listeners {
		if a := listeners[i].Address; a != nil && a.Address == "" {
			a.Address = def
		}
	}
	if *listen == "" {
		*listen = def
		if len(listeners) > 0 && listeners[0].Address != nil {
			*listen = listeners[0].Address.Address
		}
	}
	return nil
}

// prepareChain records, as libvirt's chain detection does, a disk's
// backing chain in the live definition, ending with an empty
// <backingStore/> (which also tells QEMU not to look further).
func prepareChain(disk *libvirtxml.DomainDisk, rt Runtime) error {
	// A disk whose definition says its chain (an empty <backingStore/>:
	// none) is taken at its word, as libvirt does.
	if rt.BackingChain == nil || disk.Source == nil || disk.Source.File == nil || disk.Source.File.File == "" {
		return nil
	}
	format := "raw"
	if disk.Driver != nil && disk.Driver.Type != "" {
		format = disk.Driver.Type
	}
	path, tail := disk.Source.File.File, &disk.BackingStore
	if disk.BackingStore != nil {
		// A chain the definition records in part (libvirt records the
		// image an external snapshot was taken on, not that image's own
		// backing files) goes on with what its last image says, as
		// libvirt's chain detection does; a terminated one is complete.
		last := disk.BackingStore
		if EmptyBackingStore(last) {
			return nil
		}
		for last.BackingStore != nil {
			if EmptyBackingStore(last.BackingStore) {
				return nil
			}
			last = last.BackingStore
		}
		if last.Source == nil || last.Source.File == nil || last.Source.File.File == "" || last.Format == nil {
			return nil
		}
		path, format, tail = last.Source.File.File, last.Format.Type, &last.BackingStore
	}
	chain, err := rt.BackingChain(path, format)
	if err != nil {
		return compat.Errorf(libvirt.ErrInternalError, compat.FromQEMU, "disk %s: %v", disk.Target.Dev, err)
	}
	// The live definition records the chain, ending with an empty
	// <backingStore/>.
	bs := &libvirtxml.DomainDiskBackingStore{}
	for k := len(chain) - 1; k >= 0; k-- {
		bs = &libvirtxml.DomainDiskBackingStore{
			Format:       &libvirtxml.DomainDiskFormat{Type: chain[k].Format},
			Source:       &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: chain[k].Path}},
			BackingStore: bs,
		}
	}
	*tail = bs
	return nil
}

// numberImages gives every disk image its index in the live definition
// (<source index='N'/>, <backingStore index='N'>), the number of its block
// nodes in QEMU: from the last disk to the first, each from the top down.
func numberImages(dv *libvirtxml.DomainDeviceList) {
	n := uint(1)
	for i := len(dv.Disks) - 1; i >= 0; i-- {
		disk := &dv.Disks[i]
		if disk.Source != nil && (disk.Source.File != nil && disk.Source.File.File != "" || disk.Source.Block != nil && disk.Source.Block.Dev != "") {
			disk.Source.Index = n
		} else if disk.Driver != nil && disk.Driver.Type == "raw" {
			// An empty drive has no image, so no format, while it runs.
			disk.Driver.Type = ""
		}
		n++
		for bs := disk.BackingStore; !EmptyBackingStore(bs); bs = bs.BackingStore {
			bs.Index = n
			n++
		}
	}
}
