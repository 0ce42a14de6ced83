package hostinfo

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// dmiStruct is one SMBIOS structure of the raw table
// (/sys/firmware/dmi/tables/DMI): its formatted area and its strings.
type dmiStruct struct {
	typ     byte
	data    []byte // the formatted area, header included
	strings []string
}

// parseDMITable splits the raw SMBIOS table into structures, stopping at
// the end-of-table structure (type 127) or at a truncated one.
func parseDMITable(b []byte) []*dmiStruct {
	var out []*dmiStruct
	for len(b) >= 4 {
		length := int(b[1])
		if length < 4 || length > len(b) {
			break
		}
		s := &dmiStruct{typ: b[0], data: b[:length]}
		rest := b[length:]
		// Strings: NUL-terminated, the set ends with an empty one (a
		// structure without strings has two NULs straight away).
		i := 0
		for {
			j := 0
			for i+j < len(rest) && rest[i+j] != 0 {
				j++
			}
			if i+j >= len(rest) {
				return append(out, s)
			}
			if j == 0 {
				i++
				break
			}
			s.strings = append(s.strings, string(rest[i:i+j]))
			i += j + 1
		}
		if len(s.strings) == 0 && i < len(rest) && rest[i] == 0 {
			i++
		}
		out = append(out, s)
		if s.typ == 127 {
			break
		}
		b = rest[i:]
	}
	return out
}

func firstOfType(structs []*dmiStruct, typ byte) *dmiStruct {
	for _, s := range structs {
		if s.typ == typ {
			return s
		}
	}
	return nil
}

func (s *dmiStruct) has(off int) bool { return off < len(s.data) }

func (s *dmiStruct) word(off int) uint16 { return binary.LittleEndian.Uint16(s.data[off:]) }

func (s *dmiStruct) dword(off int) uint32 { return binary.LittleEndian.Uint32(s.data[off:]) }

// str is dmidecode's dmi_string for the string number at off; absent when
// the structure is too short to hold it.
func (s *dmiStruct) str(off int) entry {
	if !s.has(off) {
		return entry{}
	}
	n := int(s.data[off])
	switch {
	case n == 0:
		return entry{value: "Not Specified", ok: true}
	case n > len(s.strings):
		return entry{value: "<BAD INDEX>", ok: true}
	}
	// dmidecode prints non-printable bytes as dots; libvirt trims
	// trailing white space.
	v := []byte(s.strings[n-1])
	for i, c := range v {
		if c < 32 || c == 127 {
			v[i] = '.'
		}
	}
	return entry{value: strings.TrimRight(string(v), " \t"), ok: true}
}

func named(name string, e entry) entry { e.name = name; return e }

func val(name, v string) entry { return entry{name: name, value: v, ok: true} }

// chassisSKU is type 3's SKU Number (SMBIOS 2.7), after the contained
// element records.
func (s *dmiStruct) chassisSKU() entry {
	if !s.has(0x14) {
		return entry{name: "sku"}
	}
	n, m := int(s.data[0x13]), int(s.data[0x14])
	off := 0x15 + n*m
	if len(s.data) < off+1 {
		return entry{name: "sku"}
	}
	return named("sku", s.str(off))
}

var processorTypes = map[byte]string{1: "Other", 2: "Unknown", 3: "Central Processor", 4: "Math Processor", 5: "DSP Processor", 6: "Video Processor"}

// processorFamilies holds the families govirtd knows dmidecode's name of
// (SMBIOS 3.x table 23, the x86 part); other codes leave the entry out
// rather than guess.
var processorFamilies = map[uint16]string{
	0x01: "Other", 0x02: "Unknown", 0x03: "8086", 0x04: "80286", 0x05: "80386", 0x06: "80486",
	0x0B: "Pentium", 0x0C: "Pentium Pro", 0x0D: "Pentium II", 0x0E: "Pentium MMX", 0x0F: "Celeron",
	0x10: "Pentium II Xeon", 0x11: "Pentium III", 0x12: "M1", 0x13: "M2", 0x14: "Celeron M", 0x15: "Pentium 4 HT",
	0x18: "Duron", 0x19: "K5", 0x1A: "K6", 0x1B: "K6-2", 0x1C: "K6-3", 0x1D: "Athlon", 0x1F: "K6-2+",
	0x28: "Core Duo", 0x29: "Core Duo Mobile", 0x2A: "Core Solo Mobile", 0x2B: "Atom", 0x2C: "Core M",
	0x2D: "Core m3", 0x2E: "Core m5", 0x2F: "Core m7",
	0x66: "Athlon X4", 0x67: "Opteron X1000", 0x68: "Opteron X2000", 0x69: "Opteron A-Series", 0x6A: "Opteron X3000", 0x6B: "Zen",
	0xB0: "Pentium III Xeon", 0xB1: "Pentium III Speedstep", 0xB2: "Pentium 4", 0xB3: "Xeon", 0xB5: "Xeon MP",
	0xB6: "Athlon XP", 0xB7: "Athlon MP", 0xB9: "Pentium M", 0xBA: "Celeron D", 0xBB: "Pentium D", 0xBC: "Pentium EE",
	0xBD: "Core Solo", 0xBF: "Core 2 Duo", 0xC0: "Core 2 Solo", 0xC1: "Core 2 Extreme", 0xC2: "Core 2 Quad",
	0xC3: "Core 2 Extreme Mobile", 0xC4: "Core 2 Duo Mobile", 0xC5: "Core 2 Solo Mobile", 0xC6: "Core i7",
	0xC7: "Dual-Core Celeron", 0xCD: "Core i5", 0xCE: "Core i3", 0xCF: "Core i9",
}

var processorStatus = []string{"Unknown", "Enabled", "Disabled By User", "Disabled By BIOS", "Idle", "<OUT OF SPEC>", "<OUT OF SPEC>", "Other"}

func inRanges(v uint16, r ...uint16) bool {
	for i := 0; i+1 < len(r); i += 2 {
		if v >= r[i] && v <= r[i+1] {
			return true
		}
	}
	return false
}

// processorSignature is dmidecode's "Signature:" line of an x86 CPU
// (dmi_processor_id): 1 for Intel-style, 2 for AMD-style decoding.
func (s *dmiStruct) processorSignature(family uint16) entry {
	sig := 0
	switch {
	case inRanges(family, 0x0B, 0x15, 0x28, 0x2F, 0xA1, 0xB3, 0xB5, 0xB5, 0xB9, 0xC7, 0xCD, 0xCF, 0xD2, 0xDB, 0xDD, 0xE0):
		sig = 1
	case inRanges(family, 0x18, 0x1D, 0x1F, 0x1F, 0x38, 0x3F, 0x46, 0x4F, 0x66, 0x6B, 0x83, 0x8F, 0xB6, 0xB7, 0xE4, 0xEF):
		sig = 2
	case family == 0x01 || family == 0x02:
		v := s.str(0x10).value
		switch {
		case strings.HasPrefix(v, "Pentium III MMX"), strings.HasPrefix(v, "Intel(R) Core(TM)2"),
			strings.HasPrefix(v, "Intel(R) Pentium(R)"), v == "Genuine Intel(R) CPU U1400":
			sig = 1
		case strings.HasPrefix(v, "AMD Athlon(TM)"), strings.HasPrefix(v, "AMD Opteron(tm)"),
			strings.HasPrefix(v, "Dual-Core AMD Opteron(tm)"):
			sig = 2
		}
	}
	if sig == 0 || !s.has(0x0B) {
		return entry{name: "signature"}
	}
	eax := s.dword(0x08)
	if sig == 1 {
		return val("signature", fmt.Sprintf("Type %d, Family %d, Model %d, Stepping %d",
			(eax>>12)&0x3, ((eax>>20)&0xFF)+((eax>>8)&0x0F), ((eax>>12)&0xF0)+((eax>>4)&0x0F), eax&0xF))
	}
	fam, model := (eax>>8)&0xF, (eax>>4)&0xF
	if fam == 0xF {
		fam += (eax >> 20) & 0xFF
		model |= (eax >> 12) & 0xF0
	}
	return val("signature", fmt.Sprintf("Family %d, Model %d, Stepping %d", fam, model, eax&0xF))
}

func frequency(name string, mhz uint16) entry {
	if mhz == 0 {
		return val(name, "Unknown")
	}
	return val(name, fmt.Sprintf("%d MHz", mhz))
}

// processor is one <processor> from a type 4 structure.
func (s *dmiStruct) processor() *section {
	if len(s.data) < 0x1A {
		return nil
	}
	family := uint16(s.data[0x06])
	if family == 0xFE && len(s.data) >= 0x2A {
		family = s.word(0x28)
	}
	typ, ok := processorTypes[s.data[0x05]]
	if !ok {
		typ = "<OUT OF SPEC>"
	}
	fam := entry{name: "family"}
	if f, ok := processorFamilies[family]; ok {
		fam = val("family", f)
	}
	status := "Unpopulated"
	if st := s.data[0x18]; st&(1<<6) != 0 {
		status = "Populated, " + processorStatus[st&0x07]
	}
	sec := &section{name: "processor", entries: []entry{
		named("socket_destination", s.str(0x04)),
		val("type", typ),
		fam,
		named("manufacturer", s.str(0x07)),
		s.processorSignature(family),
		named("version", s.str(0x10)),
		frequency("external_clock", s.word(0x12)),
		frequency("max_speed", s.word(0x14)),
		val("status", status),
		{name: "serial_number"},
		{name: "part_number"},
	}}
	if len(s.data) >= 0x23 {
		sec.entries[9] = named("serial_number", s.str(0x20))
		sec.entries[10] = named("part_number", s.str(0x22))
	}
	return sec
}

var memoryFormFactors = []string{"", "Other", "Unknown", "SIMM", "SIP", "Chip", "DIP", "ZIP", "Proprietary Card", "DIMM", "TSOP", "Row Of Chips", "RIMM", "SODIMM", "SRIMM", "FB-DIMM", "Die"}

var memoryTypes = []string{"", "Other", "Unknown", "DRAM", "EDRAM", "VRAM", "SRAM", "RAM", "ROM", "Flash", "EEPROM", "FEPROM", "EPROM", "CDRAM", "3DRAM", "SDRAM", "SGRAM", "RDRAM", "DDR", "DDR2", "DDR2 FB-DIMM", "Reserved", "Reserved", "Reserved", "DDR3", "FBD2", "DDR4", "LPDDR", "LPDDR2", "LPDDR3", "LPDDR4", "Logical non-volatile device", "HBM", "HBM2", "DDR5", "LPDDR5", "HBM3"}

var memoryTypeDetails = []string{"Other", "Unknown", "Fast-paged", "Static Column", "Pseudo-static", "RAMBus", "Synchronous", "CMOS", "EDO", "Window DRAM", "Cache DRAM", "Non-Volatile", "Registered (Buffered)", "Unbuffered (Unregistered)", "LRDIMM"}

func lookupName(table []string, i int) string {
	if i <= 0 || i >= len(table) {
		return "<OUT OF SPEC>"
	}
	return table[i]
}

// memorySize is dmidecode's dmi_print_memory_size for a size in KiB: the
// largest unit with a non-zero part, counted with the next smaller one
// when that is non-zero too.
func memorySize(kib uint64) string {
	units := []string{"kB", "MB", "GB", "TB", "PB", "EB", "ZB"}
	var split [7]uint64
	for i := range split {
		split[i] = (kib >> (10 * i)) & 0x3FF
	}
	i := 6
	for i > 0 && split[i] == 0 {
		i--
	}
	capacity := split[i]
	if i > 0 && split[i-1] != 0 {
		i--
		capacity = split[i] + split[i+1]<<10
	}
	return fmt.Sprintf("%d %s", capacity, units[i])
}

// memoryDevice is one <memory_device> from a type 17 structure; nil for an
// empty slot, which libvirt leaves out.
func (s *dmiStruct) memoryDevice() *section {
	if len(s.data) < 0x15 {
		return nil
	}
	var size string
	switch code := s.word(0x0C); {
	case code == 0:
		return nil // No Module Installed
	case code == 0xFFFF:
		size = "Unknown"
	case code == 0x7FFF && len(s.data) >= 0x20:
		mb := s.dword(0x1C) & 0x7FFFFFFF
		switch {
		case mb&0x3FF != 0:
			size = fmt.Sprintf("%d MB", mb)
		case mb&0xFFC00 != 0:
			size = fmt.Sprintf("%d GB", mb>>10)
		default:
			size = fmt.Sprintf("%d TB", mb>>20)
		}
	default:
		kib := uint64(code & 0x7FFF)
		if code&0x8000 == 0 {
			kib <<= 10
		}
		size = memorySize(kib)
	}
	detail := "None"
	if code := s.word(0x13); code&0xFFFE != 0 {
		var parts []string
		for i := 1; i <= 15; i++ {
			if code&(1<<i) != 0 {
				parts = append(parts, memoryTypeDetails[i-1])
			}
		}
		detail = strings.Join(parts, " ")
	}
	sec := &section{name: "memory_device", entries: []entry{
		val("size", size),
		val("form_factor", lookupName(memoryFormFactors, int(s.data[0x0E]))),
		named("locator", s.str(0x10)),
		named("bank_locator", s.str(0x11)),
		val("type", lookupName(memoryTypes, int(s.data[0x12]))),
		val("type_detail", detail),
		{name: "speed"}, {name: "manufacturer"}, {name: "serial_number"}, {name: "part_number"},
	}}
	if len(s.data) >= 0x1B {
		speed := uint32(s.word(0x15))
		if speed == 0xFFFF && len(s.data) >= 0x58 {
			speed = s.dword(0x54)
		}
		if speed == 0 {
			sec.entries[6] = val("speed", "Unknown")
		} else {
			sec.entries[6] = val("speed", fmt.Sprintf("%d MT/s", speed))
		}
		sec.entries[7] = named("manufacturer", s.str(0x17))
		sec.entries[8] = named("serial_number", s.str(0x18))
		sec.entries[9] = named("part_number", s.str(0x1A))
	}
	return sec
}
