// Package process starts and watches QEMU processes.
//
// QEMU runs as the daemon's own child, in a session of its own: its exit is
// seen the moment it happens (a waited-for child is reaped in milliseconds,
// where libvirt's daemonized QEMU and 200 ms polling cost ~1.6 s per
// migration on these machines), and a daemon crash does not take the guest
// down. After a daemon restart the QEMU is no longer a child; Attach watches
// it through a pidfd instead.
package process

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Spec describes a process to start.
type Spec struct {
	Path       string
	Args       []string
	Env        []string
	Dir        string
	ExtraFiles []*os.File // inherited as fd 3, 4, ...
	LogPath    string     // stdout and stderr are appended here
}

// Process is a running (or exited) QEMU.
type Process struct {
	pid       int
	startTime uint64
	exited    chan struct{}
	err       error // set before exited is closed
	proc      *os.Process
}

// ErrGone is returned by Attach when the process no longer exists, or its
// pid now belongs to another process.
var ErrGone = errors.New("process is gone")

// Start starts the process and returns as soon as it runs.
func Start(spec Spec) (*Process, error) {
	logf, err := os.OpenFile(spec.LogPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	defer logf.Close()
	// The command line goes first in the log, as in libvirt's qemu logs: it
	// is the first thing to look at when a guest misbehaves.
	fmt.Fprintf(logf, "%s: starting up\n%s %s %s\n", time.Now().UTC().Format("2006-01-02 15:04:05.000+0000"),
		strings.Join(spec.Env, " "), spec.Path, quoteArgs(spec.Args))
	cmd := exec.Command(spec.Path, spec.Args...)
	cmd.Env = spec.Env
	cmd.Dir = spec.Dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = spec.ExtraFiles
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.Path, err)
	}
	p := &Process{pid: cmd.Process.Pid, exited: make(chan struct{}), proc: cmd.Process}
	p.startTime, _ = StartTime(p.pid)
	go func() {
		err := cmd.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) || err == nil {
			p.err = exitError(cmd.ProcessState)
		} else {
			p.err = err
		}
		close(p.exited)
	}()
	return p, nil
}

func exitError(ps *os.ProcessState) error {
	if ps == nil || ps.Success() {
		return nil
	}
	return fmt.Errorf("qemu %s", ps.String())
}

// Attach watches an existing process that is not our child. startTime (from
// StartTime when the process was started) guards against a recycled pid.
func Attach(pid int, startTime uint64) (*Process, error) {
	st, err := StartTime(pid)
	if err != nil || (startTime != 0 && st != startTime) {
		return nil, ErrGone
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return nil, ErrGone
		}
		return nil, fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	// Re-check after opening: the pid could have been recycled in between.
	if st2, err := StartTime(pid); err != nil || st2 != st {
		unix.Close(fd)
		return nil, ErrGone
	}
	proc, _ := os.FindProcess(pid)
	p := &Process{pid: pid, startTime: st, exited: make(chan struct{}), proc: proc}
	go func() {
		defer unix.Close(fd)
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		for {
			_, err := unix.Poll(fds, -1)
			if err == nil || !errors.Is(err, unix.EINTR) {
				break
			}
		}
		// The exit status of a process that is not our child is not ours
		// to collect; the monitor's events tell what happened.
		close(p.exited)
	}()
	return p, nil
}

// PID returns the process id.
func (p *Process) PID() int { return p.pid }

// StartTime returns the kernel start time recorded for the process.
func (p *Process) StartTime() uint64 { return p.startTime }

// Exited is closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Err returns how the process ended (nil for a clean exit or when unknown).
// Valid once Exited is closed.
func (p *Process) Err() error { return p.err }

// Running reports whether the process has not exited yet.
func (p *Process) Running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// killedWait bounds the wait for a SIGKILLed process to be seen gone.
var killedWait = 10 * time.Second

// Kill sends SIGTERM, waits up to grace for the exit (less if ctx ends),
// then SIGKILL, and waits for the exit. That last wait does not end with
// ctx: a daemon shutting down (its context cancelled) still sees its QEMUs
// gone before it goes; it is bounded by killedWait.
func (p *Process) Kill(ctx context.Context, grace time.Duration) error {
	if !p.Running() {
		return nil
	}
	p.signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.exited:
		return nil
	case <-t.C:
	case <-ctx.Done():
	}
	p.signal(syscall.SIGKILL)
	select {
	case <-p.exited:
		return nil
	case <-time.After(killedWait):
		return fmt.Errorf("process %d did not exit within %v of SIGKILL", p.pid, killedWait)
	}
}

func (p *Process) signal(sig syscall.Signal) {
	if p.proc != nil {
		p.proc.Signal(sig)
	}
}

// statFields returns the fields of /proc/PID/stat after the command name:
// f[0] is field 3 (state), f[k] is field k+3.
func statFields(pid int) ([]string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil, err
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// count fields after its closing parenthesis.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return nil, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	return f, nil
}

// StartTime reads a process's start time (in clock ticks since boot) from
// /proc/PID/stat: with the pid, it identifies a process uniquely.
func StartTime(pid int) (uint64, error) {
	f, err := statFields(pid)
	if err != nil {
		return 0, err
	}
	if f[0] == "Z" {
		return 0, ErrGone
	}
	return strconv.ParseUint(f[19], 10, 64) // field 22
}

// CPUTimes returns the user and system CPU time a process used, in
// nanoseconds (0, 0 if it cannot be read).
func CPUTimes(pid int) (user, system uint64) {
	f, err := statFields(pid)
	if err != nil {
		return 0, 0
	}
	u, _ := strconv.ParseUint(f[11], 10, 64) // field 14, utime
	s, _ := strconv.ParseUint(f[12], 10, 64) // field 15, stime
	// Clock ticks are USER_HZ, 100 on Linux.
	return u * 10_000_000, s * 10_000_000
}

func quoteArgs(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " \"'{}$") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}
