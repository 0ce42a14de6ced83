package hostinfo

import (
	"errors"
	"io/fs"
	"os"
	"strings"
)

// entry is one <entry name='...'> of a sysinfo section; ok is false for a
// field the firmware does not provide (libvirt leaves it out).
type entry struct {
	name, value string
	ok          bool
}

// section is <bios>, <system>, <baseBoard>, <chassis>, <processor> or
// <memory_device>.
type section struct {
	name    string
	entries []entry
}

// SMBIOS is the host's SMBIOS data as libvirt's virSysinfoDef holds it.
type SMBIOS struct {
	sections []section
}

// dmiField reads /sys/class/dmi/id/NAME the way dmidecode prints the
// string: an empty string is "Not Specified".
func (f FS) dmiField(name string) entry {
	b, err := os.ReadFile(f.path("sys/class/dmi/id/" + name))
	if err != nil {
		return entry{}
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		v = "Not Specified"
	}
	return entry{value: v, ok: true}
}

// dmiSection builds a section from sysfs files, in libvirt's entry order;
// it is nil when the firmware has none of them (libvirt then prints no
// element).
func (f FS) dmiSection(name string, fields [][2]string) *section {
	s := &section{name: name}
	any := false
	for _, fl := range fields {
		e := entry{name: fl[0]}
		if fl[1] != "" {
			got := f.dmiField(fl[1])
			e.value, e.ok = got.value, got.ok
		}
		if e.ok {
			any = true
		}
		s.entries = append(s.entries, e)
	}
	if !any {
		return nil
	}
	return s
}

// ErrNoSMBIOS says the host exports no DMI data at all: dmidecode fails
// there, and libvirt's QEMU driver then has no host sysinfo.
var ErrNoSMBIOS = errors.New("no SMBIOS data: neither /sys/class/dmi/id nor /sys/firmware/dmi/tables exist")

// ReadSMBIOS is virSysinfoReadDMI with the kernel's DMI export instead of
// dmidecode: /sys/class/dmi/id for the BIOS, system, base board and
// chassis, and the raw table /sys/firmware/dmi/tables/DMI (readable by
// root) for processors and memory devices. A host without any DMI export
// (some virtual machines) gives ErrNoSMBIOS, as dmidecode fails there.
func (f FS) ReadSMBIOS() (*SMBIOS, error) {
	_, errID := os.Stat(f.path("sys/class/dmi/id"))
	_, errTables := os.Stat(f.path("sys/firmware/dmi/tables"))
	if errID != nil && errTables != nil {
		return nil, ErrNoSMBIOS
	}
	s := &SMBIOS{}
	add := func(sec *section) {
		if sec != nil {
			s.sections = append(s.sections, *sec)
		}
	}
	add(f.dmiSection("bios", [][2]string{
		{"vendor", "bios_vendor"}, {"version", "bios_version"}, {"date", "bios_date"}, {"release", "bios_release"},
	}))
	sys := f.dmiSection("system", [][2]string{
		{"manufacturer", "sys_vendor"}, {"product", "product_name"}, {"version", "product_version"},
		{"serial", "product_serial"}, {"uuid", "product_uuid"}, {"sku", "product_sku"}, {"family", "product_family"},
	})
	if sys != nil {
		// dmidecode prints the UUID in upper case; the kernel in lower.
		for i := range sys.entries {
			if sys.entries[i].name == "uuid" {
				sys.entries[i].value = strings.ToUpper(sys.entries[i].value)
			}
		}
	}
	add(sys)
	table, err := os.ReadFile(f.path("sys/firmware/dmi/tables/DMI"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, fs.ErrPermission) {
		return nil, err
	}
	structs := parseDMITable(table)
	board := f.dmiSection("baseBoard", [][2]string{
		{"manufacturer", "board_vendor"}, {"product", "board_name"}, {"version", "board_version"},
		{"serial", "board_serial"}, {"asset", "board_asset_tag"}, {"location", ""},
	})
	if board != nil {
		if b := firstOfType(structs, 2); b != nil {
			board.entries[5] = b.str(0x0A)
		}
	}
	add(board)
	chassis := f.dmiSection("chassis", [][2]string{
		{"manufacturer", "chassis_vendor"}, {"version", "chassis_version"}, {"serial", "chassis_serial"},
		{"asset", "chassis_asset_tag"}, {"sku", ""},
	})
	if chassis != nil {
		if c := firstOfType(structs, 3); c != nil {
			chassis.entries[4] = c.chassisSKU()
		}
	}
	add(chassis)
	for _, st := range structs {
		if st.typ == 4 {
			add(st.processor())
		}
	}
	for _, st := range structs {
		if st.typ == 17 {
			add(st.memoryDevice())
		}
	}
	return s, nil
}

// sysinfoEscaper is virBufferEscapeString's.
var sysinfoEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "'", "&apos;", "\"", "&quot;")

// Format is virSysinfoFormat for type smbios, ending in a newline.
func (s *SMBIOS) Format() string {
	if len(s.sections) == 0 {
		return "<sysinfo type='smbios'/>\n"
	}
	var b strings.Builder
	b.WriteString("<sysinfo type='smbios'>\n")
	for _, sec := range s.sections {
		b.WriteString("  <" + sec.name + ">\n")
		for _, e := range sec.entries {
			if !e.ok {
				continue
			}
			b.WriteString("    <entry name='" + e.name + "'>" + sysinfoEscaper.Replace(e.value) + "</entry>\n")
		}
		b.WriteString("  </" + sec.name + ">\n")
	}
	b.WriteString("</sysinfo>\n")
	return b.String()
}
