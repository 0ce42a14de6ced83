// Package hostinfo reads what libvirt's node calls report about the host
// from /proc and /sys: free memory per NUMA cell (virHostMemGetCellsFree),
// memory and CPU time statistics (virHostMemGetStats, virHostCPUGetStats),
// the online CPU map (virHostCPUGetMap) and the SMBIOS data of
// virConnectGetSysinfo.
//
// Every read goes through an FS rooted at a directory, so tests run on
// fixture trees instead of the real /proc and /sys. Errors a client should
// see are *compat.Error values worded as libvirt words them.
package hostinfo

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// FS reads host files below Root ("" or "/" is the real host).
type FS struct{ Root string }

// Host is the real host.
var Host = FS{Root: "/"}

func (f FS) path(p string) string {
	root := f.Root
	if root == "" {
		root = "/"
	}
	return filepath.Join(root, p)
}

// read returns a file's content with surrounding white space trimmed.
func (f FS) read(p string) (string, error) {
	b, err := os.ReadFile(f.path(p))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// ParseMeminfoKiB returns the value of key (e.g. "MemTotal") in KiB from
// /proc/meminfo or a NUMA node's meminfo ("Node 0 MemTotal: ... kB").
func ParseMeminfoKiB(data, key string) (uint64, bool) {
	for line := range strings.SplitSeq(data, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(k)
		if len(f) == 0 || f[len(f)-1] != key {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) == 0 {
			return 0, false
		}
		n, err := strconv.ParseUint(fields[0], 10, 64)
		if err != nil {
			return 0, false
		}
		return n, true
	}
	return 0, false
}

// ParseCPUList parses the kernel's cpulist format ("0-3,8,10-11") into
// ascending CPU numbers.
func ParseCPUList(s string) ([]int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	seen := map[int]bool{}
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(strings.TrimSpace(lo))
		if err != nil {
			return nil, fmt.Errorf("bad cpu list %q: %w", s, err)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(strings.TrimSpace(hi)); err != nil {
				return nil, fmt.Errorf("bad cpu list %q: %w", s, err)
			}
		}
		if a < 0 || b < a || b-a > 1<<16 {
			return nil, fmt.Errorf("bad cpu list %q: invalid range", s)
		}
		for i := a; i <= b; i++ {
			seen[i] = true
		}
	}
	out := make([]int, 0, len(seen))
	for c := range seen {
		out = append(out, c)
	}
	sort.Ints(out)
	return out, nil
}

// numaNodes lists the NUMA node ids under /sys/devices/system/node,
// ascending; none means the host has no NUMA sysfs (libvirt then reports a
// single cell 0 holding everything).
func (f FS) numaNodes() []int {
	ents, err := os.ReadDir(f.path("sys/devices/system/node"))
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), "node")
		if !ok {
			continue
		}
		if n, err := strconv.Atoi(rest); err == nil && n >= 0 {
			out = append(out, n)
		}
	}
	sort.Ints(out)
	return out
}
