// Package caps probes the host and its QEMU binaries once and answers the
// capability questions libvirt's QEMU driver answers: NODE_GET_INFO,
// CONNECT_GET_CAPABILITIES, CONNECT_GET_VERSION and the machine types a
// domain may use.
package caps

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"libvirt.org/go/libvirtxml"
)

// Options controls Probe.
type Options struct {
	// HostUUID is reported as <host><uuid>; required.
	HostUUID string
	// Emulators lists QEMU binaries to use, each named qemu-system-<target>.
	// Empty means searching /usr/local/bin and /usr/bin like libvirtd's PATH.
	// A listed binary that fails to probe fails Probe; a discovered one is
	// skipped with a warning instead, as libvirt does.
	Emulators []string
	// SysRoot prefixes every /proc, /sys and /dev path that is read; "" means
	// "/". Emulator binaries are always looked up on the real filesystem.
	SysRoot string
	// DisableKVM withholds <domain type='kvm'/> even when /dev/kvm works,
	// for hosts whose KVM is present but not trusted to run guests (the
	// daemon then behaves like libvirtd without KVM access).
	DisableKVM bool
}

// NodeInfo is libvirt's virNodeInfo as returned by NODE_GET_INFO.
type NodeInfo struct {
	Model   string // uname machine, at most 31 bytes
	Memory  uint64 // KiB
	CPUs    int32  // online CPUs
	MHz     int32
	Nodes   int32
	Sockets int32 // per node
	Cores   int32 // per socket
	Threads int32 // per core
}

// Host is the probed state. It is immutable after Probe and therefore safe
// for concurrent use.
type Host struct {
	nodeInfo        NodeInfo
	capsXML         string
	defaultEmulator string
	qemuVersion     uint64
	emulators       map[string]string    // guest arch -> binary
	machines        map[string][]Machine // guest arch -> capabilities entries
	kvm             bool
	warnings        []string
}

// Probe inspects the host once: it reads /proc and /sys, checks whether KVM
// works, and runs every QEMU binary (concurrently, bounded by ctx, or by ten
// seconds per binary when ctx has no deadline).
func Probe(ctx context.Context, opts Options) (*Host, error) {
	uuid, err := normalizeUUID(opts.HostUUID)
	if err != nil {
		return nil, fmt.Errorf("host UUID: %w", err)
	}
	root := opts.SysRoot
	if root == "" {
		root = "/"
	}
	fs := sysfs{root: root}
	hostArch := unameMachine()

	emus, err := emulatorsByArch(hostArch, opts.Emulators)
	if err != nil {
		return nil, err
	}

	// Probe each distinct binary once; i686 often shares x86_64's.
	var paths []string
	for _, p := range emus {
		if !slices.Contains(paths, p) {
			paths = append(paths, p)
		}
	}
	slices.Sort(paths)
	bins := make([]*binaryInfo, len(paths))
	errs := make([]error, len(paths))
	var wg sync.WaitGroup
	for i, p := range paths {
		wg.Go(func() { bins[i], errs[i] = probeBinary(ctx, p) })
	}

	hi, hostErr := probeHost(fs, hostArch)
	kvm := !opts.DisableKVM && kvmUsable(filepath.Join(root, "dev/kvm"))
	wg.Wait()

	if hostErr != nil {
		return nil, fmt.Errorf("probing host: %w", hostErr)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("probing QEMU: %w", err)
	}

	h := &Host{
		nodeInfo:  hi.node,
		emulators: map[string]string{},
		machines:  map[string][]Machine{},
		kvm:       kvm,
	}
	byPath := map[string]*binaryInfo{}
	for i, p := range paths {
		if errs[i] != nil {
			if len(opts.Emulators) > 0 {
				return nil, errs[i]
			}
			h.warnings = append(h.warnings, errs[i].Error())
			continue
		}
		byPath[p] = bins[i]
		if !bins[i].viaQMP {
			h.warnings = append(h.warnings, fmt.Sprintf("%s: QMP probe failed, machine list from -machine help", p))
		}
	}

	var guests []guestSpec
	for _, g := range guestArches {
		bi := byPath[emus[g.arch]]
		if bi == nil {
			continue
		}
		ms := expandMachines(bi.machines)
		h.emulators[g.arch] = bi.path
		h.machines[g.arch] = ms
		guests = append(guests, guestSpec{arch: g.arch, wordsize: g.wordsize, emulator: bi.path, machines: ms})
		// CONNECT_GET_VERSION reports the binary for the host arch.
		if g.arch == hostArch {
			h.defaultEmulator = bi.path
			h.qemuVersion = bi.version
		}
	}

	doc := buildCaps(uuid, hi, guests, kvm)
	out, err := doc.Marshal()
	if err != nil {
		return nil, fmt.Errorf("marshalling capabilities XML: %w", err)
	}
	// libvirt's document ends with a newline; virsh prints it verbatim.
	h.capsXML = out + "\n"
	return h, nil
}

// NodeInfo returns the NODE_GET_INFO answer.
func (h *Host) NodeInfo() NodeInfo { return h.nodeInfo }

// CapabilitiesXML returns the CONNECT_GET_CAPABILITIES document, rendered
// once at Probe time.
func (h *Host) CapabilitiesXML() string { return h.capsXML }

// Caps returns a fresh deep copy of the capabilities document (parsed from
// the rendered XML), so callers may modify it freely.
func (h *Host) Caps() *libvirtxml.Caps {
	c := &libvirtxml.Caps{}
	if err := c.Unmarshal(h.capsXML); err != nil {
		// We produced this XML ourselves with the same library.
		panic(fmt.Sprintf("caps: re-parsing own capabilities XML: %v", err))
	}
	return c
}

// QEMUVersion returns the host-arch emulator's version encoded as libvirt
// does (major*1,000,000 + minor*1,000 + micro), 0 if there is none.
func (h *Host) QEMUVersion() uint64 { return h.qemuVersion }

// DefaultEmulator returns the emulator for the host architecture, "" if none.
func (h *Host) DefaultEmulator() string { return h.defaultEmulator }

// Emulator returns the emulator used for guests of arch ("x86_64", "i686").
func (h *Host) Emulator(arch string) string { return h.emulators[arch] }

// KVM reports whether domain type 'kvm' is offered.
func (h *Host) KVM() bool { return h.kvm }

// Machines returns a copy of the <machine> entries for a guest arch, in
// capabilities order: the default machine first, aliases right after the
// machine they point to. Nil when the arch is not supported.
func (h *Host) Machines(arch string) []Machine { return slices.Clone(h.machines[arch]) }

// DefaultMachine returns the canonical (versioned) name of QEMU's default
// machine for arch, which is what libvirt records in a domain that does not
// name a machine; "" if unknown.
func (h *Host) DefaultMachine(arch string) string {
	for _, m := range h.machines[arch] {
		if m.Default && m.Canonical == "" {
			return m.Name
		}
	}
	return ""
}

// CanonicalMachine resolves an alias such as "pc" to the versioned machine
// it stands for. Non-alias names known for arch are returned unchanged;
// ok is false when arch does not offer the machine at all.
func (h *Host) CanonicalMachine(arch, name string) (canonical string, ok bool) {
	for _, m := range h.machines[arch] {
		if m.Name == name {
			if m.Canonical != "" {
				return m.Canonical, true
			}
			return m.Name, true
		}
	}
	return "", false
}

// Warnings lists problems that were tolerated during Probe (e.g. a
// discovered QEMU binary that failed to run). Meant for logging.
func (h *Host) Warnings() []string { return slices.Clone(h.warnings) }

// normalizeUUID accepts the forms libvirt accepts (with or without dashes,
// any case) and returns the canonical lowercase dashed form.
func normalizeUUID(s string) (string, error) {
	if s == "" {
		return "", errors.New("empty")
	}
	hex := make([]byte, 0, 32)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '-' || c == ' ':
			continue
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
			hex = append(hex, c)
		case c >= 'A' && c <= 'F':
			hex = append(hex, c+('a'-'A'))
		default:
			return "", fmt.Errorf("invalid character %q in %q", c, s)
		}
	}
	if len(hex) != 32 {
		return "", fmt.Errorf("%q does not have 32 hex digits", s)
	}
	h := string(hex)
	return strings.Join([]string{h[0:8], h[8:12], h[12:16], h[16:20], h[20:32]}, "-"), nil
}
