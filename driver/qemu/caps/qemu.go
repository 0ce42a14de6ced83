package caps

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Machine is one <machine> entry of a guest in the capabilities XML.
type Machine struct {
	// Name is what a domain's <type machine='...'> may say.
	Name string
	// Canonical is set when Name is an alias (e.g. "pc") and names the
	// versioned machine it currently stands for ("pc-i440fx-7.2").
	Canonical string
	// MaxCPUs is QEMU's cpu-max for the machine; 0 when unknown.
	MaxCPUs int
	// Default is true for QEMU's default machine and for its alias.
	Default bool
	// Deprecated mirrors QEMU's deprecation flag.
	Deprecated bool
}

// machineType is one machine as QEMU describes it, before alias expansion.
type machineType struct {
	name       string
	alias      string
	maxCPUs    int
	isDefault  bool
	deprecated bool
}

// binaryInfo is the result of probing one QEMU binary.
type binaryInfo struct {
	path     string
	version  uint64
	machines []machineType // default machine first, then QEMU's order
	viaQMP   bool          // false when the -machine help fallback was used
}

// guestArch maps the libvirt guest architectures we support to the QEMU
// target name in "qemu-system-<target>" and the guest word size. The slice
// order is libvirt's virArch enum order, which is the order libvirt emits
// <guest> elements in (i686 before x86_64).
//
// Other targets (aarch64, ppc64, s390x, ...) are deliberately not handled
// yet: they need per-arch features and machine defaults we have not
// verified against libvirt, so their binaries are skipped.
var guestArches = []struct {
	arch     string
	target   string
	wordsize int
}{
	{"i686", "i386", 32},
	{"x86_64", "x86_64", 64},
}

// defaultSearchDirs is where libvirtd's PATH (under systemd) finds QEMU,
// in lookup order.
var defaultSearchDirs = []string{"/usr/local/bin", "/usr/bin"}

// findBinary returns the first executable "qemu-system-<target>".
func findBinary(dirs []string, target string) string {
	for _, d := range dirs {
		p := filepath.Join(d, "qemu-system-"+target)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// targetOf returns the QEMU target of an explicitly given emulator path.
func targetOf(path string) (string, bool) {
	t, ok := strings.CutPrefix(filepath.Base(path), "qemu-system-")
	return t, ok && t != ""
}

// emulatorsByArch decides which binary serves each guest arch, following
// libvirt's virQEMUCapsFindBinaryForArch: the binary named after the guest
// arch wins, and a 32-bit x86 guest falls back to the host's
// qemu-system-x86_64 when qemu-system-i386 is absent.
func emulatorsByArch(hostArch string, explicit []string) (map[string]string, error) {
	byTarget := map[string]string{}
	if len(explicit) > 0 {
		for _, p := range explicit {
			t, ok := targetOf(p)
			if !ok {
				return nil, fmt.Errorf("emulator %q: cannot tell its target from the name (want qemu-system-<arch>)", p)
			}
			if _, dup := byTarget[t]; !dup {
				byTarget[t] = p
			}
		}
	} else {
		for _, g := range guestArches {
			if p := findBinary(defaultSearchDirs, g.target); p != "" {
				byTarget[g.target] = p
			}
		}
	}
	out := map[string]string{}
	for _, g := range guestArches {
		if p := byTarget[g.target]; p != "" {
			out[g.arch] = p
		} else if g.arch == "i686" && hostArch == "x86_64" && byTarget["x86_64"] != "" {
			out[g.arch] = byTarget["x86_64"]
		}
	}
	return out, nil
}

// probeTimeout bounds each QEMU invocation when the caller's context has no
// deadline; a healthy QEMU answers in tens of milliseconds.
const probeTimeout = 10 * time.Second

func runQEMU(ctx context.Context, path string, stdin string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = time.Second
	out, err := cmd.Output()
	if err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return out, fmt.Errorf("%s %s: %w: %s", path, strings.Join(args, " "), err, msg)
		}
		return out, fmt.Errorf("%s %s: %w", path, strings.Join(args, " "), err)
	}
	return out, nil
}

// probeBinary asks QEMU for its version and machine types. Machines come
// from QMP query-machines (exact cpu-max, aliases and QEMU's ordering, as
// libvirt uses); if QMP fails we fall back to parsing -machine help with a
// static cpu-max table.
func probeBinary(ctx context.Context, path string) (*binaryInfo, error) {
	if _, has := ctx.Deadline(); !has {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, probeTimeout)
		defer cancel()
	}

	type result struct {
		out []byte
		err error
	}
	verCh := make(chan result, 1)
	go func() {
		out, err := runQEMU(ctx, path, "", "-version")
		verCh <- result{out, err}
	}()

	bi := &binaryInfo{path: path}
	out, qmpErr := runQEMU(ctx, path, qmpScript,
		"-S", "-no-user-config", "-nodefaults", "-display", "none",
		"-machine", "none", "-accel", "tcg", "-qmp", "stdio")
	if qmpErr == nil {
		bi.machines, qmpErr = parseQMPMachines(out)
	}
	if qmpErr == nil {
		bi.viaQMP = true
	} else {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("probing %s: %w", path, ctx.Err())
		}
		help, err := runQEMU(ctx, path, "", "-machine", "help")
		if err != nil {
			return nil, fmt.Errorf("listing machines of %s: %w (QMP: %v)", path, err, qmpErr)
		}
		if bi.machines, err = parseMachineHelp(string(help)); err != nil {
			return nil, fmt.Errorf("listing machines of %s: %w (QMP: %v)", path, err, qmpErr)
		}
	}

	v := <-verCh
	if v.err != nil {
		return nil, fmt.Errorf("querying version of %s: %w", path, v.err)
	}
	ver, err := parseVersion(string(v.out))
	if err != nil {
		return nil, fmt.Errorf("querying version of %s: %w", path, err)
	}
	bi.version = ver
	return bi, nil
}

var versionRE = regexp.MustCompile(`QEMU emulator version (\d+)\.(\d+)(?:\.(\d+))?`)

// parseVersion extracts the version from `qemu-system-* -version` output and
// encodes it as libvirt does: major*1,000,000 + minor*1,000 + micro.
func parseVersion(out string) (uint64, error) {
	m := versionRE.FindStringSubmatch(out)
	if m == nil {
		first, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
		return 0, fmt.Errorf("unrecognised version output %q", first)
	}
	var parts [3]uint64
	for i, s := range m[1:] {
		if s == "" {
			continue
		}
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil || n > 999 && i > 0 {
			return 0, fmt.Errorf("bad version component %q in %q", s, m[0])
		}
		parts[i] = n
	}
	return parts[0]*1_000_000 + parts[1]*1_000 + parts[2], nil
}

// qmpScript is fed to QEMU's stdin: QMP needs capability negotiation before
// any command, and quit makes QEMU exit once it has answered.
const qmpScript = `{"execute":"qmp_capabilities"}
{"execute":"query-machines"}
{"execute":"quit"}
`

type qmpMachineInfo struct {
	Name       string `json:"name"`
	Alias      string `json:"alias"`
	IsDefault  bool   `json:"is-default"`
	CPUMax     int    `json:"cpu-max"`
	Deprecated bool   `json:"deprecated"`
}

// parseQMPMachines finds the query-machines reply in a QMP stdio transcript.
func parseQMPMachines(out []byte) ([]machineType, error) {
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var msg struct {
			Return json.RawMessage `json:"return"`
			Error  *struct {
				Class string `json:"class"`
				Desc  string `json:"desc"`
			} `json:"error"`
		}
		if err := dec.Decode(&msg); err != nil {
			if errors.Is(err, io.EOF) {
				return nil, errors.New("no query-machines reply from QMP")
			}
			return nil, fmt.Errorf("decoding QMP reply: %w", err)
		}
		if msg.Error != nil {
			return nil, fmt.Errorf("QMP error %s: %s", msg.Error.Class, msg.Error.Desc)
		}
		if len(msg.Return) == 0 || msg.Return[0] != '[' {
			continue // greeting, qmp_capabilities or quit reply, events
		}
		var infos []qmpMachineInfo
		if err := json.Unmarshal(msg.Return, &infos); err != nil {
			return nil, fmt.Errorf("decoding query-machines reply: %w", err)
		}
		ms := make([]machineType, 0, len(infos))
		for _, in := range infos {
			ms = append(ms, machineType{
				name:       in.Name,
				alias:      in.Alias,
				maxCPUs:    in.CPUMax,
				isDefault:  in.IsDefault,
				deprecated: in.Deprecated,
			})
		}
		if len(ms) == 0 {
			return nil, errors.New("QMP query-machines returned no machines")
		}
		return defaultFirst(ms), nil
	}
}

// parseMachineHelp parses `-machine help`. QEMU prints one line per alias
// ("pc  <desc> (alias of pc-i440fx-7.2)") and one per machine, the latter
// suffixed with " (default)" and/or " (deprecated)".
func parseMachineHelp(out string) ([]machineType, error) {
	var ms []machineType
	index := map[string]int{}
	aliases := map[string]string{} // target -> alias
	for line := range strings.SplitSeq(out, "\n") {
		line = strings.TrimRight(line, " \r")
		if line == "" || strings.HasPrefix(line, "Supported machines") || line[0] == ' ' {
			continue
		}
		name, rest, _ := strings.Cut(line, " ")
		rest = strings.TrimSpace(rest)
		if i := strings.LastIndex(rest, "(alias of "); i >= 0 && strings.HasSuffix(rest, ")") {
			target := strings.TrimSuffix(rest[i+len("(alias of "):], ")")
			aliases[target] = name
			continue
		}
		m := machineType{name: name}
		for {
			if r, ok := strings.CutSuffix(rest, " (default)"); ok {
				m.isDefault, rest = true, r
			} else if r, ok := strings.CutSuffix(rest, " (deprecated)"); ok {
				m.deprecated, rest = true, r
			} else {
				break
			}
		}
		m.maxCPUs = staticMaxCPUs(name)
		index[name] = len(ms)
		ms = append(ms, m)
	}
	if len(ms) == 0 {
		return nil, errors.New("no machines in -machine help output")
	}
	for target, alias := range aliases {
		if i, ok := index[target]; ok {
			ms[i].alias = alias
		}
	}
	return defaultFirst(ms), nil
}

// staticMaxCPUs is the cpu-max QEMU 7.2 reports for the x86 machine
// families; only used when QMP is unavailable.
func staticMaxCPUs(name string) int {
	switch {
	case strings.HasPrefix(name, "pc-i440fx-"):
		return 255
	case strings.HasPrefix(name, "pc-q35-"):
		// q35 went from 255 to 288 CPUs with the 2.8 machine type.
		v := strings.TrimPrefix(name, "pc-q35-")
		maj, rest, _ := strings.Cut(v, ".")
		minStr, _, _ := strings.Cut(rest, ".")
		a, err1 := strconv.Atoi(maj)
		b, err2 := strconv.Atoi(minStr)
		if err1 == nil && err2 == nil && (a < 2 || a == 2 && b < 8) {
			return 255
		}
		return 288
	case name == "microvm":
		return 288
	case name == "isapc", name == "none", name == "x-remote":
		return 1
	}
	return 0
}

// defaultFirst moves the default machine to the front, as libvirt's
// virQEMUCapsSetDefaultMachine does; the rest keep QEMU's order.
func defaultFirst(ms []machineType) []machineType {
	for i, m := range ms {
		if m.isDefault && i > 0 {
			out := make([]machineType, 0, len(ms))
			out = append(out, m)
			out = append(out, ms[:i]...)
			return append(out, ms[i+1:]...)
		}
	}
	return ms
}

// expandMachines turns QEMU machines into capabilities entries the way
// libvirt's virQEMUCapsGetMachineTypesCaps does: an aliased machine yields
// its canonical entry immediately followed by the alias entry pointing to it.
func expandMachines(ms []machineType) []Machine {
	out := make([]Machine, 0, len(ms)+2)
	for _, m := range ms {
		out = append(out, Machine{
			Name:       m.name,
			MaxCPUs:    m.maxCPUs,
			Default:    m.isDefault,
			Deprecated: m.deprecated,
		})
		if m.alias != "" {
			out = append(out, Machine{
				Name:       m.alias,
				Canonical:  m.name,
				MaxCPUs:    m.maxCPUs,
				Default:    m.isDefault,
				Deprecated: m.deprecated,
			})
		}
	}
	return out
}
