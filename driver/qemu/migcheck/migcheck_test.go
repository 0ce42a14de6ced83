package migcheck

import (
	"errors"
	"strings"
	"testing"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/compat/migparams"
)

func domain(t *testing.T, devices string) *libvirtxml.Domain {
	t.Helper()
	doc := `<domain type='kvm'>
  <name>demo</name>
  <uuid>92319d98-2b5c-459d-b3f3-d70c7e23ef61</uuid>
  <title>t</title>
  <description>d</description>
  <memory unit='KiB'>131072</memory>
  <currentMemory unit='KiB'>131072</currentMemory>
  <vcpu placement='static'>2</vcpu>
  <os><type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type></os>
  <cpu mode='custom' match='exact' check='none'><model fallback='forbid'>qemu64</model></cpu>
  <clock offset='utc'/>
  <devices>` + devices + `
    <memballoon model='virtio'><address type='pci' domain='0x0000' bus='0x00' slot='0x02' function='0x0'/></memballoon>
  </devices>
</domain>`
	d := &libvirtxml.Domain{}
	if err := d.Unmarshal(doc); err != nil {
		t.Fatal(err)
	}
	return d
}

const fileDisk = `
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' CACHE/>
      <source file='/images/demo.qcow2'/>
      <target dev='vda' bus='virtio'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x04' function='0x0'/>
    </disk>`

func disk(cache string) string {
	if cache != "" {
		cache = "cache='" + cache + "'"
	}
	return strings.Replace(fileDisk, "CACHE", cache, 1)
}

func fakeFS(fs string) func(string) (string, error) {
	return func(string) (string, error) { return fs, nil }
}

func TestSafe(t *testing.T) {
	const cdrom = `
    <disk type='file' device='cdrom'><source file='/local/x.iso'/><target dev='hdc' bus='ide'/></disk>
    <disk type='file' device='floppy'><target dev='fda' bus='fdc'/></disk>`
	const netDisk = `
    <disk type='network' device='disk'><source protocol='rbd' name='pool/img'/><target dev='vdb' bus='virtio'/></disk>`
	const roDisk = `
    <disk type='file' device='disk'><source file='/local/ro.img'/><target dev='vdc' bus='virtio'/><readonly/></disk>`
	const shared = `
    <disk type='file' device='disk'><source file='/images/s.img'/><target dev='vdd' bus='virtio'/><shareable/></disk>`
	tests := []struct {
		name    string
		devices string
		fs      string
		flags   migparams.Flags
		noDrop  bool
		want    string
	}{
		{"ext4 local", disk("none"), "ext4", migparams.Live, false, msgNoSharedStorage},
		{"tmpfs local", disk(""), "tmpfs", migparams.Live, false, msgNoSharedStorage},
		{"nfs cache none", disk("none"), "nfs", migparams.Live, false, ""},
		{"nfs directsync old qemu", disk("directsync"), "nfs", migparams.Live, true, ""},
		{"nfs default cache qemu 7.2", disk(""), "nfs", migparams.Live, false, ""},
		{"nfs writeback qemu without drop-cache", disk("writeback"), "nfs", migparams.Live, true, msgCacheMode},
		{"nfs shareable old qemu", shared, "nfs", migparams.Live, true, ""},
		{"gfs2 cluster any cache", disk("writeback"), "gfs2", migparams.Live, true, ""},
		{"glusterfs fuse cluster", disk("writeback"), "fuse.glusterfs", migparams.Live, true, ""},
		{"unknown fuse local", disk("none"), "fuse.sshfs", migparams.Live, false, msgNoSharedStorage},
		{"cdrom and empty floppy skipped", cdrom, "ext4", migparams.Live, false, ""},
		{"readonly skipped", roDisk, "ext4", migparams.Live, false, ""},
		{"network disk", netDisk, "ext4", migparams.Live, false, ""},
		{"unsafe flag", disk(""), "ext4", migparams.Live | migparams.Unsafe, true, ""},
		{"offline", disk(""), "ext4", migparams.Offline | migparams.PersistDest, true, ""},
		{"storage migration copies disk", disk(""), "ext4", migparams.Live | migparams.NonSharedDisk, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := SafeWith(domain(t, tt.devices), tt.flags, SafetyOptions{FSType: fakeFS(tt.fs), NoDropCache: tt.noDrop})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected %v", err)
				}
				return
			}
			le := compat.As(err)
			if err == nil || le.Code != libvirt.ErrMigrateUnsafe || le.Detail != tt.want || le.Domain != compat.FromQEMU {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
			if !strings.HasPrefix(le.Message(), "Unsafe migration: ") {
				t.Errorf("message %q", le.Message())
			}
		})
	}
	probeErr := errors.New("boom")
	err := SafeWith(domain(t, disk("")), migparams.Live, SafetyOptions{FSType: func(string) (string, error) { return "", probeErr }})
	if !errors.Is(err, probeErr) {
		t.Errorf("probe error lost: %v", err)
	}
	// migrate_disks selects what QEMU copies; other disks still need shared storage.
	err = SafeWith(domain(t, disk("")), migparams.Live|migparams.NonSharedDisk,
		SafetyOptions{FSType: fakeFS("ext4"), MigrateDisks: []string{"vdz"}})
	if compat.As(err).Detail != msgNoSharedStorage {
		t.Errorf("migrate_disks: %v", err)
	}
}

func TestCheckABI(t *testing.T) {
	base := disk("none") + `
    <interface type='network'><mac address='52:54:00:aa:bb:cc'/><source network='default'/><model type='virtio'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x03' function='0x0'/></interface>
    <input type='mouse' bus='ps2'/>
    <video><model type='cirrus' vram='16384' heads='1'/><address type='pci' domain='0x0000' bus='0x00' slot='0x05' function='0x0'/></video>`
	tests := []struct {
		name   string
		mutate func(d *libvirtxml.Domain)
		opts   ABIOptions
		want   string
	}{
		{"identical", func(*libvirtxml.Domain) {}, ABIOptions{}, ""},
		{"host side changes", func(d *libvirtxml.Domain) {
			d.Title, d.Description = "other", "changed"
			d.Devices.Disks[0].Source.File.File = "/mnt/other.qcow2"
			d.Devices.Disks[0].Driver.Cache = "writeback"
			d.Devices.Interfaces[0].Source.Network.Network = "other"
			d.CurrentMemory.Value = 65536
			d.Memory.Value, d.Memory.Unit = 128, "MiB"
		}, ABIOptions{}, ""},
		{"uuid case", func(d *libvirtxml.Domain) { d.UUID = strings.ToUpper(d.UUID) }, ABIOptions{}, ""},
		{"virt type", func(d *libvirtxml.Domain) { d.Type = "qemu" }, ABIOptions{},
			"Target domain virt type qemu does not match source kvm"},
		{"uuid", func(d *libvirtxml.Domain) { d.UUID = "00000000-0000-0000-0000-000000000001" }, ABIOptions{},
			"Target domain uuid 00000000-0000-0000-0000-000000000001 does not match source 92319d98-2b5c-459d-b3f3-d70c7e23ef61"},
		{"name", func(d *libvirtxml.Domain) { d.Name = "x" }, ABIOptions{},
			"Target domain name 'x' does not match source 'demo'"},
		{"name with dname", func(d *libvirtxml.Domain) { d.Name = "x" }, ABIOptions{DestName: "x"}, ""},
		{"memory", func(d *libvirtxml.Domain) { d.Memory.Value = 262144 }, ABIOptions{},
			"Target domain max memory 262144 does not match source 131072"},
		{"vcpus", func(d *libvirtxml.Domain) { d.VCPU.Value = 4 }, ABIOptions{},
			"Target domain vCPU max 4 does not match source 2"},
		{"current vcpus", func(d *libvirtxml.Domain) { d.VCPU.Current = 1 }, ABIOptions{},
			"State of vCPU '1' differs between source and destination definitions"},
		{"machine", func(d *libvirtxml.Domain) { d.OS.Type.Machine = "pc-q35-7.2" }, ABIOptions{},
			"Target domain machine type pc-q35-7.2 does not match source pc-i440fx-7.2"},
		{"arch", func(d *libvirtxml.Domain) { d.OS.Type.Arch = "i686" }, ABIOptions{},
			"Target domain architecture i686 does not match source x86_64"},
		{"cpu model", func(d *libvirtxml.Domain) { d.CPU.Model.Value = "Haswell" }, ABIOptions{},
			"Target CPU model Haswell does not match source qemu64"},
		{"disk count", func(d *libvirtxml.Domain) { d.Devices.Disks = nil }, ABIOptions{},
			"Target domain disk count 0 does not match source 1"},
		{"disk target", func(d *libvirtxml.Domain) { d.Devices.Disks[0].Target.Dev = "vdb" }, ABIOptions{},
			"Target disk vdb does not match source vda"},
		{"disk bus", func(d *libvirtxml.Domain) { d.Devices.Disks[0].Target.Bus = "sata" }, ABIOptions{},
			"Target disk bus sata does not match source virtio"},
		{"disk readonly", func(d *libvirtxml.Domain) { d.Devices.Disks[0].ReadOnly = &libvirtxml.DomainDiskReadOnly{} }, ABIOptions{},
			"Target disk access mode does not match source"},
		{"disk pci slot", func(d *libvirtxml.Domain) { s := uint(9); d.Devices.Disks[0].Address.PCI.Slot = &s }, ABIOptions{},
			"Target device PCI address 0000:00:09.00 does not match source 0000:00:04.00"},
		{"address type", func(d *libvirtxml.Domain) { d.Devices.Disks[0].Address = nil }, ABIOptions{},
			"Target device address type none does not match source pci"},
		{"mac", func(d *libvirtxml.Domain) { d.Devices.Interfaces[0].MAC.Address = "52:54:00:00:00:01" }, ABIOptions{},
			"Target network card mac 52:54:00:00:00:01 does not match source 52:54:00:aa:bb:cc"},
		{"nic model", func(d *libvirtxml.Domain) { d.Devices.Interfaces[0].Model.Type = "e1000" }, ABIOptions{},
			"Target network card model e1000 does not match source virtio"},
		{"net count", func(d *libvirtxml.Domain) { d.Devices.Interfaces = nil }, ABIOptions{},
			"Target domain net card count 0 does not match source 1"},
		{"video", func(d *libvirtxml.Domain) { d.Devices.Videos[0].Model.VRam = 8192 }, ABIOptions{},
			"Target video card vram 8192 does not match source 16384"},
		{"serial added", func(d *libvirtxml.Domain) {
			d.Devices.Serials = append(d.Devices.Serials, libvirtxml.DomainSerial{})
		}, ABIOptions{}, "Target domain serial port count 1 does not match source 0"},
		{"balloon model", func(d *libvirtxml.Domain) { d.Devices.MemBalloon.Model = "none" }, ABIOptions{},
			"Target balloon model none does not match source virtio"},
		{"features", func(d *libvirtxml.Domain) {
			d.Features = &libvirtxml.DomainFeatureList{ACPI: &libvirtxml.DomainFeature{}}
		}, ABIOptions{}, "Target domain features do not match source"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, dst := domain(t, base), domain(t, base)
			tt.mutate(dst)
			err := CheckABI(src, dst, tt.opts)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected %v", err)
				}
				return
			}
			le := compat.As(err)
			if err == nil || le.Code != libvirt.ErrConfigUnsupported || le.Detail != tt.want {
				t.Fatalf("got %v\nwant %q", err, tt.want)
			}
		})
	}
}
