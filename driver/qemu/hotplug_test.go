package qemu

import (
	"errors"
	"testing"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver/qemu/qmp"
)

func wantCode(t *testing.T, err error, code libvirt.ErrorNumber, msg string) {
	t.Helper()
	var ce *compat.Error
	if !errors.As(err, &ce) || ce.Code != code || ce.Detail != msg {
		t.Errorf("error = %v, want code %d %q", err, code, msg)
	}
}

// TestUnpluggedVcpu: QEMU 7.2's only DEVICE_DELETED for an unplugged x86
// vCPU names its lapic; nothing else is taken for a vCPU.
func TestUnpluggedVcpu(t *testing.T) {
	for path, want := range map[string]string{
		"/machine/peripheral/vcpu3/lapic":                   "vcpu3",
		"/machine/peripheral/vcpu3":                         "",
		"/machine/peripheral/virtio-disk1/virtio-backend":   "",
		"/machine/unattached/device[0]/lapic":               "",
		"/machine/peripheral-anon/device[1]/virtio-backend": "",
		"": "",
	} {
		if got := unpluggedVcpu(path); got != want {
			t.Errorf("unpluggedVcpu(%q) = %q, want %q", path, got, want)
		}
	}
}

// TestCPUSlots: slots are numbered in topology order whatever order QEMU
// lists them in, and a plugged vCPU's device_add names its slot.
func TestCPUSlots(t *testing.T) {
	slots := cpuSlots([]qmp.HotpluggableCPU{
		{Type: "qemu64-x86_64-cpu", VCPUsCount: 1, Props: map[string]int{"socket-id": 2, "core-id": 0, "thread-id": 0}},
		{Type: "qemu64-x86_64-cpu", VCPUsCount: 1, Props: map[string]int{"socket-id": 1, "core-id": 0, "thread-id": 0}, QOMPath: "/machine/peripheral/vcpu1"},
		{Type: "qemu64-x86_64-cpu", VCPUsCount: 1, Props: map[string]int{"socket-id": 0, "core-id": 0, "thread-id": 0}, QOMPath: "/machine/unattached/device[0]"},
	})
	if slots[0].Props["socket-id"] != 0 || slots[2].Props["socket-id"] != 2 {
		t.Fatalf("slot order: %+v", slots)
	}
	if slots[0].hotplugged() || !slots[1].hotplugged() || slots[2].hotplugged() {
		t.Errorf("hotplugged: %v %v %v", slots[0].hotplugged(), slots[1].hotplugged(), slots[2].hotplugged())
	}
	if got, want := string(cpuDeviceProps(slots[2])), `{"driver":"qemu64-x86_64-cpu","id":"vcpu2","core-id":0,"socket-id":2,"thread-id":0}`; got != want {
		t.Errorf("device_add = %s\nwant %s", got, want)
	}
}

func nicDef(nics ...libvirtxml.DomainInterface) *libvirtxml.Domain {
	return &libvirtxml.Domain{Devices: &libvirtxml.DomainDeviceList{Interfaces: nics}}
}

func nic(mac, alias string, slot uint) libvirtxml.DomainInterface {
	zero := uint(0)
	return libvirtxml.DomainInterface{
		MAC:     &libvirtxml.DomainInterfaceMAC{Address: mac},
		Alias:   &libvirtxml.DomainAlias{Name: alias},
		Address: &libvirtxml.DomainAddress{PCI: &libvirtxml.DomainAddressPCI{Domain: &zero, Bus: &zero, Slot: &slot, Function: &zero}},
	}
}

// TestFindNet follows virDomainNetFindIdx's matching and messages.
func TestFindNet(t *testing.T) {
	def := nicDef(nic("52:54:00:00:00:01", "net0", 3), nic("52:54:00:00:00:02", "net2", 4))
	if i, err := findNet(def, &libvirtxml.DomainInterface{MAC: &libvirtxml.DomainInterfaceMAC{Address: "52:54:00:00:00:02"}}); err != nil || i != 1 {
		t.Errorf("by MAC: %d %v", i, err)
	}
	_, err := findNet(def, &libvirtxml.DomainInterface{MAC: &libvirtxml.DomainInterfaceMAC{Address: "52:54:00:00:00:09"}})
	wantCode(t, err, libvirt.ErrDeviceMissing, "no device matching MAC address 52:54:00:00:00:09 found")
	_, err = findNet(def, &libvirtxml.DomainInterface{})
	wantCode(t, err, libvirt.ErrOperationFailed, "multiple matching devices found")
	m := nic("52:54:00:00:00:01", "", 4)
	_, err = findNet(def, &m)
	wantCode(t, err, libvirt.ErrDeviceMissing, "no device matching MAC address 52:54:00:00:00:01 found on 0000:00:04.0")
	if got := nextNetAlias(def); got != "net3" {
		t.Errorf("nextNetAlias = %q, want net3", got)
	}
}

// TestParseDeviceXML: the device kind comes from the root element; bad
// XML is libvirt's XML parse error (VIR_ERR_XML_DETAIL, as virXMLParse).
func TestParseDeviceXML(t *testing.T) {
	dx, err := parseDeviceXML("<disk type='file' device='disk'><source file='/a'/><target dev='vdb' bus='virtio'/></disk>")
	if err != nil || dx.kind != "disk" || diskTarget(dx.disk) != "vdb" {
		t.Errorf("disk: %+v %v", dx, err)
	}
	if dx, err := parseDeviceXML("<watchdog model='i6300esb'/>"); err != nil || dx.kind != "watchdog" {
		t.Errorf("watchdog: %+v %v", dx, err)
	}
	for _, bad := range []string{"", "not xml", "<disk><target dev='vdb'></disk>"} {
		var ce *compat.Error
		if _, err := parseDeviceXML(bad); !errors.As(err, &ce) || ce.Code != libvirt.ErrXMLDetail {
			t.Errorf("parseDeviceXML(%q) = %v, want an XML error", bad, err)
		}
	}
}
