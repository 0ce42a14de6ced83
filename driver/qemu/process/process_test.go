package process

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A cancelled context (the daemon shutting down) skips the grace period
// but still waits for the killed process to be gone.
func TestKillWithCancelledContext(t *testing.T) {
	p, err := Start(Spec{Path: "/bin/sh", Args: []string{"-c", "trap '' TERM; exec sleep 30"}, LogPath: filepath.Join(t.TempDir(), "log")})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the trap is set
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if err := p.Kill(ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if p.Running() {
		t.Fatal("Kill returned with the process still running")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Kill with a cancelled context took %v: the grace period was not skipped", d)
	}
}

func TestStartWaitKill(t *testing.T) {
	log := filepath.Join(t.TempDir(), "log")
	p, err := Start(Spec{Path: "/bin/sleep", Args: []string{"30"}, LogPath: log})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Running() || p.StartTime() == 0 {
		t.Fatalf("running=%v start=%d", p.Running(), p.StartTime())
	}
	start := time.Now()
	if err := p.Kill(context.Background(), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("a waited-for child took %v to be seen gone", time.Since(start))
	}
	b, _ := os.ReadFile(log)
	if !strings.Contains(string(b), "/bin/sleep 30") {
		t.Errorf("log lacks the command line: %q", b)
	}
}

func TestAttachSeesExit(t *testing.T) {
	// A process that is not our child: started by a shell that exits.
	cmd := exec.Command("/bin/sh", "-c", "sleep 30 >/dev/null 2>&1 & echo $!")
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	for _, c := range strings.TrimSpace(string(out)) {
		pid = pid*10 + int(c-'0')
	}
	st, err := StartTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Attach(pid, st+1); err != ErrGone {
		t.Errorf("attach with a wrong start time: %v, want ErrGone", err)
	}
	p, err := Attach(pid, st)
	if err != nil {
		t.Fatal(err)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	select {
	case <-p.Exited():
	case <-time.After(10 * time.Second):
		t.Fatal("exit of an attached process not seen")
	}
}
