package process

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ThreadStat is what libvirt's virProcessGetStatInfo reads for one thread
// from /proc/PID/task/TID/stat.
type ThreadStat struct {
	CPUTime uint64 // utime + stime, ns
	CPU     int    // the host CPU it last ran on
}

// ReadThreadStat reads a thread's CPU time and current CPU.
func ReadThreadStat(pid, tid int) (ThreadStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/stat", pid, tid))
	if err != nil {
		return ThreadStat{}, err
	}
	return parseThreadStat(b)
}

func parseThreadStat(b []byte) (ThreadStat, error) {
	f, err := fieldsAfterComm(string(b))
	if err != nil {
		return ThreadStat{}, err
	}
	// f[k] is field k+3 of proc(5): utime 14, stime 15, processor 39.
	if len(f) < 37 {
		return ThreadStat{}, fmt.Errorf("parse stat: %d fields", len(f)+2)
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	s, err2 := strconv.ParseUint(f[12], 10, 64)
	cpu, err3 := strconv.Atoi(f[36])
	if err1 != nil || err2 != nil || err3 != nil {
		return ThreadStat{}, fmt.Errorf("parse stat: bad utime/stime/processor")
	}
	// Clock ticks are USER_HZ, 100 on Linux.
	return ThreadStat{CPUTime: (u + s) * 10_000_000, CPU: cpu}, nil
}

// fieldsAfterComm splits a stat line after the command name, which is in
// parentheses and may hold spaces: f[0] is field 3 (state).
func fieldsAfterComm(s string) ([]string, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil, fmt.Errorf("parse stat: no command name")
	}
	return strings.Fields(s[i+1:]), nil
}

// RSS returns a process's resident set size in KiB (VmRSS of
// /proc/PID/status).
func RSS(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return parseVmRSS(b)
}

func parseVmRSS(b []byte) (uint64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			break
		}
		return strconv.ParseUint(f[0], 10, 64)
	}
	return 0, fmt.Errorf("no VmRSS in status")
}
