package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The evidence behind the report's notes: a CPU profile of govirtd under 64
// connections and the Go runtime's memory statistics idle and after the
// run, taken from the daemon's own debug_pprof_addr endpoint.

// fetch GETs a pprof URL of h.
func (h *host) fetch(path string, timeout time.Duration) ([]byte, error) {
	c := http.Client{Timeout: timeout}
	resp, err := c.Get("http://" + h.pprof + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", path, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

// memStats reads the runtime.MemStats lines ("# Name = value") that the
// heap profile's debug page ends with.
func (h *host) memStats() (map[string]float64, []byte, error) {
	b, err := h.fetch("/debug/pprof/heap?debug=1&gc=1", 10*time.Second)
	if err != nil {
		return nil, nil, err
	}
	out := map[string]float64{}
	var raw bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		name, val, ok := strings.Cut(strings.TrimPrefix(line, "# "), " = ")
		if !ok || !strings.HasPrefix(line, "# ") {
			continue
		}
		raw.WriteString(line + "\n")
		if v, err := strconv.ParseFloat(strings.Fields(val)[0], 64); err == nil {
			out[name] = v
		}
	}
	return out, raw.Bytes(), sc.Err()
}

// memStatRows records the heap figures that explain the RSS rows.
func (b *bench) memStatRows(when string) {
	for _, h := range b.order(0, 0) {
		if h.pprof == "" {
			continue
		}
		ms, raw, err := h.memStats()
		if err != nil {
			b.notes = append(b.notes, fmt.Sprintf("memory statistics of %s (%s): %v", h.name, when, err))
			continue
		}
		_ = os.WriteFile(filepath.Join(*flagOut, fmt.Sprintf("govirtd-memstats-%s-%s.txt", strings.ReplaceAll(when, " ", "-"), h.name)), raw, 0o644)
		for _, f := range []struct{ key, label string }{
			{"HeapAlloc", "live heap objects (HeapAlloc)"},
			{"HeapInuse", "heap spans in use (HeapInuse)"},
			{"GCSys", "GC metadata (GCSys)"},
		} {
			b.row("ms-"+when+f.key, row{section: "Memory", figure: fmt.Sprintf("govirtd %s, Go runtime: %s", when, f.label), unit: "MB"}).add(h.kind, ms[f.key]/1e6)
		}
		if v, ok := ms["Stack"]; ok {
			b.row("ms-"+when+"Stack", row{section: "Memory", figure: fmt.Sprintf("govirtd %s, Go runtime: stacks", when), unit: "MB"}).add(h.kind, v/1e6)
		}
	}
}

// cpuProfile runs 64 connections of ConnectGetLibVersion against the first
// govirtd host (not counted in the table) while taking a CPU profile of the
// daemon, and writes the profile and its top functions to the output
// directory.
func (b *bench) cpuProfile(govirtdBin string) {
	var h *host
	for _, x := range b.order(0, 0) {
		if x.pprof != "" {
			h = x
			break
		}
	}
	if h == nil {
		return
	}
	logf("CPU profile of govirtd, 64 connections of ConnectGetLibVersion (not counted)")
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		time.Sleep(300 * time.Millisecond) // let the connections start
		p, err := h.fetch("/debug/pprof/profile?seconds=2", 10*time.Second)
		done <- result{p, err}
	}()
	if _, err := runRPC(h, simpleWorkloads(10, nil)[0], 64, 2500*time.Millisecond); err != nil {
		b.notes = append(b.notes, fmt.Sprintf("CPU profile run: %v", err))
	}
	r := <-done
	if r.err != nil {
		b.notes = append(b.notes, fmt.Sprintf("CPU profile: %v", r.err))
		return
	}
	prof := filepath.Join(*flagOut, "govirtd-cpu-64conn.pprof")
	if err := os.WriteFile(prof, r.b, 0o644); err != nil {
		b.notes = append(b.notes, fmt.Sprintf("CPU profile: %v", err))
		return
	}
	top, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=25", govirtdBin, prof).CombinedOutput()
	if err != nil {
		b.notes = append(b.notes, fmt.Sprintf("CPU profile written to %s; go tool pprof failed: %v", prof, err))
		return
	}
	_ = os.WriteFile(filepath.Join(*flagOut, "govirtd-cpu-64conn.txt"), top, 0o644)
	// The share of the daemon's CPU spent inside system calls (flat time of
	// the raw syscall function): the part no daemon-side code change removes.
	for _, line := range strings.Split(string(top), "\n") {
		f := strings.Fields(line)
		if len(f) >= 6 && strings.HasSuffix(f[5], "syscall/linux.Syscall6") {
			if v, err := strconv.ParseFloat(strings.TrimSuffix(f[1], "%"), 64); err == nil {
				b.row("cpu-syscalls", row{section: "RPC, ConnectGetLibVersion", figure: "govirtd CPU profile, 64 conn: share in system calls (bench/out/govirtd-cpu-64conn.txt)", unit: "%"}).add(h.kind, v)
			}
		}
	}
}
