package caps

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"weak"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/compat/xmlfmt"
)

// DomainCapabilities returns libvirt's <domainCapabilities> document
// (CONNECT_GET_DOMAIN_CAPABILITIES, `virsh domcapabilities`) for an emulator
// path, guest arch, machine type and virt type. Each argument may be "" for
// the default, resolved as libvirt 9.0's virQEMUCapsCacheLookupDefault does:
// the arch of the given emulator or else the host's, the emulator serving
// that arch, virttype "kvm" when KVM is usable and "qemu" otherwise, and
// the preferred (QEMU default) machine under its canonical name.
//
// Facts that need QEMU (CPU models and their usability under the chosen
// accelerator, device types, display backends) are fetched from the binary
// the first time a given emulator/virttype pair is asked for and cached for
// the lifetime of h, so only the first call costs a QEMU start.
func (h *Host) DomainCapabilities(emulator, arch, machine, virttype string) (string, error) {
	q, err := h.resolveDomCaps(emulator, arch, machine, virttype)
	if err != nil {
		return "", err
	}
	facts, err := h.emulatorFacts(q.emulator, q.virttype)
	if err != nil {
		return "", err
	}
	doc := buildDomCaps(q, facts)
	out, err := doc.Marshal()
	if err != nil {
		return "", fmt.Errorf("marshalling domain capabilities XML: %w", err)
	}
	// libvirtxml marshals <os>'s children loader-first; libvirt prints the
	// firmware enum first.
	out, err = xmlfmt.ReformatWith(out, xmlfmt.Options{
		ChildOrder: map[string][]string{"os": {"enum", "loader"}},
	})
	if err != nil {
		return "", fmt.Errorf("formatting domain capabilities XML: %w", err)
	}
	return out, nil
}

// domCapsQuery is a fully resolved DomainCapabilities request.
type domCapsQuery struct {
	emulator string
	arch     string
	machine  Machine // canonical entry
	virttype string
}

// libvirtArches is libvirt 9.0's virArch name table: a name outside it is
// "unknown architecture", one inside it merely lacks an emulator here.
var libvirtArches = []string{
	"alpha", "armv6l", "armv7l", "armv7b", "aarch64", "cris", "i686", "ia64",
	"lm32", "m68k", "microblaze", "microblazeel", "mips", "mipsel", "mips64",
	"mips64el", "openrisc", "parisc", "parisc64", "ppc", "ppcle", "ppc64",
	"ppc64le", "ppcemb", "riscv32", "riscv64", "s390", "s390x", "sh4", "sh4eb",
	"sparc", "sparc64", "unicore32", "x86_64", "xtensa", "xtensaeb",
}

// libvirtVirtTypes is virDomainVirtType's name table.
var libvirtVirtTypes = []string{
	"none", "qemu", "kqemu", "kvm", "xen", "lxc", "uml", "openvz", "test",
	"vmware", "hyperv", "vbox", "phyp", "parallels", "bhyve", "vz", "hvf",
}

// resolveDomCaps applies libvirt's defaulting and validation, in libvirt's
// order (virttype, arch, emulator, then machine) so that a request with
// several problems reports the same one libvirt would.
func (h *Host) resolveDomCaps(emulator, arch, machine, virttype string) (*domCapsQuery, error) {
	if virttype != "" && !slices.Contains(libvirtVirtTypes, virttype) {
		return nil, compat.Errorf(libvirt.ErrInvalidArg, compat.FromQEMU, "unknown virttype: %s", virttype)
	}
	if arch != "" && !slices.Contains(libvirtArches, arch) {
		return nil, compat.Errorf(libvirt.ErrInvalidArg, compat.FromQEMU, "unknown architecture: %s", arch)
	}

	q := &domCapsQuery{}
	if emulator != "" {
		binArch, err := h.archOfEmulator(emulator)
		if err != nil {
			return nil, err
		}
		if arch == "" {
			arch = binArch
		} else if arch != binArch {
			return nil, compat.Errorf(libvirt.ErrInvalidArg, compat.FromQEMU,
				"architecture from emulator '%s' doesn't match given architecture '%s'", binArch, arch)
		}
		q.emulator = emulator
	} else {
		reqArch := arch
		if arch == "" {
			arch = unameMachine()
		}
		q.emulator = h.emulators[arch]
		if q.emulator == "" {
			// libvirt formats the caller's string here, so a defaulted
			// arch prints as "(null)".
			if reqArch == "" {
				reqArch = "(null)"
			}
			return nil, compat.Errorf(libvirt.ErrInvalidArg, compat.FromQEMU,
				"unable to find any emulator to serve '%s' architecture", reqArch)
		}
	}
	q.arch = arch

	switch virttype {
	case "":
		virttype = "qemu"
		if h.kvm {
			virttype = "kvm"
		}
	case "kvm":
		if !h.kvm {
			return nil, compat.Errorf(libvirt.ErrInvalidArg, compat.FromQEMU,
				"KVM is not supported by '%s' on this host", q.emulator)
		}
	case "qemu":
	default:
		// A valid libvirt virt type that the QEMU driver cannot run.
		return nil, compat.Errorf(libvirt.ErrInvalidArg, compat.FromQEMU,
			"virttype '%s' is not supported by emulator '%s'", virttype, q.emulator)
	}
	q.virttype = virttype

	ms := h.machines[arch]
	if machine == "" {
		machine = h.DefaultMachine(arch)
		if machine == "" && len(ms) > 0 {
			machine = ms[0].Name
		}
	}
	canon, ok := h.CanonicalMachine(arch, machine)
	if !ok {
		return nil, compat.Errorf(libvirt.ErrInvalidArg, compat.FromQEMU,
			"the machine '%s' is not supported by emulator '%s'", machine, q.emulator)
	}
	for _, m := range ms {
		if m.Name == canon {
			q.machine = m
			break
		}
	}
	return q, nil
}

// archOfEmulator returns the native guest arch of an emulator this Host
// probed. libvirt would probe any binary it is handed; govirtd only answers
// for the binaries it probed at start-up, and says so.
func (h *Host) archOfEmulator(path string) (string, error) {
	if _, err := os.Stat(path); err != nil {
		e := compat.Errorf(libvirt.ErrSystemError, compat.FromQEMU, "Cannot check QEMU binary %s: %s", path, errText(err))
		var errno syscall.Errno
		if errors.As(err, &errno) {
			e.Int1 = int32(errno)
		}
		e.Err = err
		return "", e
	}
	var served []string
	for a, p := range h.emulators {
		if p == path {
			served = append(served, a)
		}
	}
	if len(served) == 0 {
		return "", compat.Errorf(libvirt.ErrConfigUnsupported, compat.FromQEMU,
			"emulator '%s' was not probed by this daemon", path)
	}
	// A binary serving several arches (qemu-system-x86_64 standing in for a
	// missing qemu-system-i386) has the arch its name says, as in libvirt.
	if t, ok := targetOf(path); ok {
		for _, g := range guestArches {
			if g.target == t && slices.Contains(served, g.arch) {
				return g.arch, nil
			}
		}
	}
	slices.Sort(served)
	return served[len(served)-1], nil
}

// errText is the strerror part of a *PathError, which is what libvirt's
// virReportSystemError appends.
func errText(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		if errno, ok := pe.Err.(syscall.Errno); ok {
			s := errno.Error()
			// Go lower-cases strerror; libvirt prints glibc's capitalised text.
			return strings.ToUpper(s[:1]) + s[1:]
		}
		return pe.Err.Error()
	}
	return err.Error()
}

// ---- what QEMU offers -----------------------------------------------------

// emuFacts is what one emulator reports under one accelerator.
type emuFacts struct {
	cpuModels []qemuCPUModel
	types     map[string]bool // instantiable QOM types (devices, backends)
	options   map[string]bool // command-line option groups (vnc, spice, ...)
	displays  map[string]bool // -display backends whose modules load
}

type qemuCPUModel struct {
	Name        string   `json:"name"`
	Unavailable []string `json:"unavailable-features"`
	Deprecated  bool     `json:"deprecated"`
}

// hostFacts caches emuFacts per emulator and virttype for one Host. Host is
// immutable and declared elsewhere, so the cache lives beside it, keyed by a
// weak pointer and dropped when the Host is collected.
type hostFacts struct {
	mu    sync.Mutex // held across a probe so concurrent callers share it
	facts map[string]*emuFacts
}

var factsCache sync.Map // weak.Pointer[Host] -> *hostFacts

func (h *Host) emulatorFacts(emulator, virttype string) (*emuFacts, error) {
	key := weak.Make(h)
	v, loaded := factsCache.Load(key)
	if !loaded {
		v, loaded = factsCache.LoadOrStore(key, &hostFacts{facts: map[string]*emuFacts{}})
		if !loaded {
			runtime.AddCleanup(h, func(k weak.Pointer[Host]) { factsCache.Delete(k) }, key)
		}
	}
	hf := v.(*hostFacts)
	hf.mu.Lock()
	defer hf.mu.Unlock()
	ck := emulator + "\x00" + virttype
	if f := hf.facts[ck]; f != nil {
		return f, nil
	}
	accel := "tcg"
	if virttype == "kvm" {
		accel = "kvm"
	}
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	f, err := probeEmuFacts(ctx, emulator, accel)
	if err != nil {
		// Not cached: a transient failure should not stick for the daemon's
		// lifetime.
		return nil, err
	}
	hf.facts[ck] = f
	return f, nil
}

// domCapsQMP asks for everything domain capabilities need in one QEMU run.
const domCapsQMP = `{"execute":"qmp_capabilities"}
{"execute":"query-cpu-definitions","id":"cpus"}
{"execute":"qom-list-types","arguments":{"abstract":false},"id":"types"}
{"execute":"query-command-line-options","id":"opts"}
{"execute":"quit"}
`

// probeEmuFacts starts the emulator twice in parallel: once with QMP under
// the accelerator (CPU model usability depends on it), and once for
// -display help, the only place QEMU tells which UI modules actually load.
func probeEmuFacts(ctx context.Context, path, accel string) (*emuFacts, error) {
	type result struct {
		out []byte
		err error
	}
	dispCh := make(chan result, 1)
	go func() {
		out, err := runQEMU(ctx, path, "", "-display", "help")
		dispCh <- result{out, err}
	}()
	out, err := runQEMU(ctx, path, domCapsQMP,
		"-S", "-no-user-config", "-nodefaults", "-display", "none",
		"-machine", "none", "-accel", accel, "-qmp", "stdio")
	d := <-dispCh
	if err != nil {
		return nil, fmt.Errorf("probing %s for domain capabilities: %w", path, err)
	}
	f, err := parseDomCapsQMP(out)
	if err != nil {
		return nil, fmt.Errorf("probing %s for domain capabilities: %w", path, err)
	}
	// An older or stripped binary may reject "-display help"; then only
	// the built-in VNC/SPICE options speak for graphics.
	if d.err == nil {
		f.displays = parseDisplayHelp(string(d.out))
	}
	return f, nil
}

func parseDomCapsQMP(out []byte) (*emuFacts, error) {
	f := &emuFacts{types: map[string]bool{}, options: map[string]bool{}, displays: map[string]bool{}}
	got := map[string]bool{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var msg struct {
			ID     string          `json:"id"`
			Return json.RawMessage `json:"return"`
			Error  *struct {
				Class string `json:"class"`
				Desc  string `json:"desc"`
			} `json:"error"`
		}
		if err := dec.Decode(&msg); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, fmt.Errorf("decoding QMP reply: %w", err)
		}
		if msg.ID == "" {
			continue
		}
		if msg.Error != nil {
			return nil, fmt.Errorf("QMP %s: %s: %s", msg.ID, msg.Error.Class, msg.Error.Desc)
		}
		var err error
		switch msg.ID {
		case "cpus":
			err = json.Unmarshal(msg.Return, &f.cpuModels)
		case "types":
			var ts []struct {
				Name string `json:"name"`
			}
			err = json.Unmarshal(msg.Return, &ts)
			for _, t := range ts {
				f.types[t.Name] = true
			}
		case "opts":
			var opts []struct {
				Option string `json:"option"`
			}
			err = json.Unmarshal(msg.Return, &opts)
			for _, o := range opts {
				f.options[o.Option] = true
			}
		}
		if err != nil {
			return nil, fmt.Errorf("decoding QMP %s reply: %w", msg.ID, err)
		}
		got[msg.ID] = true
	}
	for _, id := range []string{"cpus", "types", "opts"} {
		if !got[id] {
			return nil, fmt.Errorf("no QMP %s reply", id)
		}
	}
	return f, nil
}

// parseDisplayHelp reads "Available display backend types:" and the names
// under it; QEMU lists only backends whose modules it could load.
func parseDisplayHelp(out string) map[string]bool {
	ds := map[string]bool{}
	for line := range strings.SplitSeq(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.Contains(line, " ") || strings.HasSuffix(line, ":") {
			continue
		}
		ds[line] = true
	}
	return ds
}

// ---- the document -----------------------------------------------------------

// libvirtCPUVendors is the x86 CPU map of libvirt 9.0
// (/usr/share/libvirt/cpu_map/x86_*.xml): libvirt lists in <mode
// name='custom'> only QEMU models it knows, with the vendor from this map.
var libvirtCPUVendors = map[string]string{
	"486": "unknown", "pentium": "unknown", "pentium2": "unknown",
	"pentium3": "unknown", "pentiumpro": "unknown", "coreduo": "Intel",
	"n270": "Intel", "core2duo": "Intel", "qemu32": "unknown",
	"kvm32": "unknown", "cpu64-rhel5": "unknown", "cpu64-rhel6": "unknown",
	"kvm64": "unknown", "qemu64": "unknown",
	"Conroe": "Intel", "Penryn": "Intel",
	"Nehalem": "Intel", "Nehalem-IBRS": "Intel",
	"Westmere": "Intel", "Westmere-IBRS": "Intel",
	"SandyBridge": "Intel", "SandyBridge-IBRS": "Intel",
	"IvyBridge": "Intel", "IvyBridge-IBRS": "Intel",
	"Haswell": "Intel", "Haswell-noTSX": "Intel", "Haswell-IBRS": "Intel", "Haswell-noTSX-IBRS": "Intel",
	"Broadwell": "Intel", "Broadwell-noTSX": "Intel", "Broadwell-IBRS": "Intel", "Broadwell-noTSX-IBRS": "Intel",
	"Skylake-Client": "Intel", "Skylake-Client-IBRS": "Intel", "Skylake-Client-noTSX-IBRS": "Intel",
	"Skylake-Server": "Intel", "Skylake-Server-IBRS": "Intel", "Skylake-Server-noTSX-IBRS": "Intel",
	"Cascadelake-Server": "Intel", "Cascadelake-Server-noTSX": "Intel",
	"Icelake-Client": "Intel", "Icelake-Client-noTSX": "Intel",
	"Icelake-Server": "Intel", "Icelake-Server-noTSX": "Intel",
	"Cooperlake": "Intel", "Snowridge": "Intel",
	"athlon": "AMD", "phenom": "AMD",
	"Opteron_G1": "AMD", "Opteron_G2": "AMD", "Opteron_G3": "AMD", "Opteron_G4": "AMD", "Opteron_G5": "AMD",
	"EPYC": "AMD", "EPYC-IBPB": "AMD", "EPYC-Rome": "AMD", "EPYC-Milan": "AMD",
	"Dhyana": "Hygon",
}

// firmwareRoot prefixes the firmware paths looked up; tests point it at a
// fixture tree.
var firmwareRoot = "/"

// ovmfCodeFiles are the UEFI code images Debian's ovmf package installs, in
// the order libvirt's firmware descriptors rank them (4M builds first).
var ovmfCodeFiles = []string{
	"/usr/share/OVMF/OVMF_CODE_4M.fd",
	"/usr/share/OVMF/OVMF_CODE_4M.secboot.fd",
	"/usr/share/OVMF/OVMF_CODE_4M.ms.fd",
	"/usr/share/OVMF/OVMF_CODE.fd",
	"/usr/share/OVMF/OVMF_CODE.secboot.fd",
	"/usr/share/OVMF/OVMF_CODE.ms.fd",
}

// seabiosFiles are where Debian's seabios package puts the BIOS QEMU loads
// by default for x86 machines.
var seabiosFiles = []string{
	"/usr/share/seabios/bios-256k.bin",
	"/usr/share/qemu/bios-256k.bin",
}

func existing(paths []string) []string {
	var out []string
	for _, p := range paths {
		if st, err := os.Stat(filepath.Join(firmwareRoot, p)); err == nil && st.Mode().IsRegular() {
			out = append(out, p)
		}
	}
	return out
}

func enum(name string, values ...string) libvirtxml.DomainCapsEnum {
	return libvirtxml.DomainCapsEnum{Name: name, Values: values}
}

// pick returns the values whose condition holds, keeping libvirt's order.
func pick(pairs ...any) []string {
	var out []string
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1].(bool) {
			out = append(out, pairs[i].(string))
		}
	}
	return out
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func device(values ...libvirtxml.DomainCapsEnum) *libvirtxml.DomainCapsDevice {
	// libvirt marks a device class supported when QEMU can provide any
	// model of it.
	supported := false
	for _, e := range values {
		supported = supported || len(e.Values) > 0
	}
	return &libvirtxml.DomainCapsDevice{Supported: yesNo(supported), Enums: values}
}

// buildDomCaps lays the document out like libvirt 9.0's
// virDomainCapsFormat, but only claims what this QEMU binary offers.
func buildDomCaps(q *domCapsQuery, f *emuFacts) *libvirtxml.DomainCaps {
	t := f.types
	isQ35 := strings.HasPrefix(q.machine.Name, "pc-q35-")
	dc := &libvirtxml.DomainCaps{
		Path:      q.emulator,
		Domain:    q.virttype,
		Machine:   q.machine.Name,
		Arch:      q.arch,
		IOThreads: &libvirtxml.DomainCapsIOThreads{Supported: "yes"},
	}
	if q.machine.MaxCPUs > 0 {
		dc.VCPU = &libvirtxml.DomainCapsVCPU{Max: uint(q.machine.MaxCPUs)}
	}

	// Firmware: only images that are installed.
	ovmf := existing(ovmfCodeFiles)
	var firmware []string
	if len(existing(seabiosFiles)) > 0 {
		firmware = append(firmware, "bios")
	}
	if len(ovmf) > 0 {
		firmware = append(firmware, "efi")
	}
	secure := []string{"no"}
	if isQ35 && slices.ContainsFunc(ovmf, func(p string) bool {
		return strings.Contains(p, ".secboot.") || strings.Contains(p, ".ms.")
	}) {
		// Secure Boot needs SMM, which only q35 provides.
		secure = append(secure, "yes")
	}
	dc.OS = &libvirtxml.DomainCapsOS{
		Supported: "yes",
		Enums:     []libvirtxml.DomainCapsEnum{enum("firmware", firmware...)},
		Loader: &libvirtxml.DomainCapsOSLoader{
			Supported: "yes",
			Values:    ovmf,
			Enums: []libvirtxml.DomainCapsEnum{
				enum("type", "rom", "pflash"),
				enum("readonly", "yes", "no"),
				enum("secure", secure...),
			},
		},
	}

	dc.CPU = buildCPUModes(q, f)

	dc.MemoryBacking = &libvirtxml.DomainCapsMemoryBacking{
		Supported: "yes",
		Enums: []libvirtxml.DomainCapsEnum{enum("sourceType", pick(
			"file", t["memory-backend-file"],
			"anonymous", t["memory-backend-ram"],
			"memfd", t["memory-backend-memfd"])...)},
	}

	_, vfioErr := os.Stat(filepath.Join(firmwareRoot, "/dev/vfio/vfio"))
	graphics := pick(
		"sdl", f.displays["sdl"],
		"vnc", f.options["vnc"],
		// Debian builds SPICE as a module; the spice-app backend is only
		// listed when that module loads.
		"spice", f.options["spice"] || f.displays["spice-app"],
		"egl-headless", f.displays["egl-headless"],
		"dbus", f.displays["dbus"])
	dc.Devices = &libvirtxml.DomainCapsDevices{
		Disk: device(
			enum("diskDevice", pick("disk", true, "cdrom", true, "floppy", t["isa-fdc"], "lun", t["scsi-block"])...),
			enum("bus", pick(
				"ide", t["ide-hd"], "fdc", t["isa-fdc"], "scsi", t["scsi-hd"],
				"virtio", t["virtio-blk-pci"], "usb", t["usb-storage"], "sata", t["ich9-ahci"])...),
			enum("model", pick(
				"virtio", t["virtio-blk-pci"],
				"virtio-transitional", t["virtio-blk-pci-transitional"],
				"virtio-non-transitional", t["virtio-blk-pci-non-transitional"])...),
		),
		Graphics: device(enum("type", graphics...)),
		Video: device(enum("modelType", pick(
			"vga", t["VGA"], "cirrus", t["cirrus-vga"], "vmvga", t["vmware-svga"],
			"qxl", t["qxl-vga"], "virtio", t["virtio-vga"] || t["virtio-gpu-pci"],
			"none", true, "bochs", t["bochs-display"], "ramfb", t["ramfb"])...)),
		HostDev: device(
			enum("mode", "subsystem"),
			enum("startupPolicy", "default", "mandatory", "requisite", "optional"),
			enum("subsysType", pick("usb", t["usb-host"], "pci", t["vfio-pci"], "scsi", t["scsi-generic"])...),
			enum("capsType"),
			enum("pciBackend", pick("default", true, "vfio", t["vfio-pci"] && vfioErr == nil)...),
		),
		RNG: device(
			enum("model", pick(
				"virtio", t["virtio-rng-pci"],
				"virtio-transitional", t["virtio-rng-pci-transitional"],
				"virtio-non-transitional", t["virtio-rng-pci-non-transitional"])...),
			enum("backendModel", pick("random", t["rng-random"], "egd", t["rng-egd"], "builtin", t["rng-builtin"])...),
		),
		// QEMU 6.0 removed the 'handle' fsdev driver that libvirt 9.0 still
		// lists, so it is not offered.
		FileSystem: device(enum("driverType", pick("path", t["virtio-9p-pci"], "virtiofs", t["vhost-user-fs-pci"])...)),
		TPM: device(
			enum("model", pick("tpm-tis", t["tpm-tis"], "tpm-crb", t["tpm-crb"])...),
			enum("backendModel", pick("passthrough", t["tpm-passthrough"], "emulator", t["tpm-emulator"])...),
		),
		Redirdev: device(enum("bus", pick("usb", t["usb-redir"])...)),
		Channel:  device(enum("type", pick("pty", true, "unix", true, "spicevmc", t["chardev-spicevmc"])...)),
	}

	dc.Features = &libvirtxml.DomainCapsFeatures{
		GIC:               &libvirtxml.DomainCapsFeatureGIC{Supported: "no"},
		VMCoreInfo:        &libvirtxml.DomainCapsFeatureVMCoreInfo{Supported: yesNo(t["vmcoreinfo"])},
		GenID:             &libvirtxml.DomainCapsFeatureGenID{Supported: yesNo(t["vmgenid"])},
		BackingStoreInput: &libvirtxml.DomainCapsFeatureBackingStoreInput{Supported: "yes"},
		Backup:            &libvirtxml.DomainCapsFeatureBackup{Supported: "yes"},
		SEV:               &libvirtxml.DomainCapsFeatureSEV{Supported: "no"},
		SGX:               &libvirtxml.DomainCapsFeatureSGX{Supported: "no"},
	}
	return dc
}

func buildCPUModes(q *domCapsQuery, f *emuFacts) *libvirtxml.DomainCapsCPU {
	passthrough := libvirtxml.DomainCapsCPUMode{Name: "host-passthrough", Supported: "no"}
	if q.virttype == "kvm" {
		passthrough.Supported = "yes"
		passthrough.Enums = []libvirtxml.DomainCapsEnum{enum("hostPassthroughMigratable", "on", "off")}
	}
	maximum := libvirtxml.DomainCapsCPUMode{
		Name:      "maximum",
		Supported: "yes",
		Enums:     []libvirtxml.DomainCapsEnum{enum("maximumMigratable", "on", "off")},
	}
	// libvirt derives host-model from its CPU map and the host's CPUID;
	// govirtd has neither, and claiming a model it cannot reproduce would
	// make guests differ from what the caps promised.
	hostModel := libvirtxml.DomainCapsCPUMode{Name: "host-model", Supported: "no"}

	custom := libvirtxml.DomainCapsCPUMode{Name: "custom", Supported: "no"}
	ms := slices.Clone(f.cpuModels)
	slices.SortFunc(ms, func(a, b qemuCPUModel) int { return strings.Compare(a.Name, b.Name) })
	for _, m := range ms {
		vendor, known := libvirtCPUVendors[m.Name]
		if !known {
			continue
		}
		cm := libvirtxml.DomainCapsCPUModel{Name: m.Name, Vendor: vendor, Usable: yesNo(len(m.Unavailable) == 0)}
		if m.Deprecated {
			cm.Deprecated = "yes"
		}
		custom.Models = append(custom.Models, cm)
	}
	if len(custom.Models) > 0 {
		custom.Supported = "yes"
	}
	return &libvirtxml.DomainCapsCPU{Modes: []libvirtxml.DomainCapsCPUMode{passthrough, maximum, hostModel, custom}}
}
