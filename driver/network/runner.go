package network

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// Runner runs the host tools the driver uses (ip, iptables, dnsmasq).
// Tests replace it to see the exact commands without touching the host.
type Runner interface {
	Run(ctx context.Context, name string, args ...string) error
}

// ExecRunner runs commands for real.
type ExecRunner struct{}

// Run runs name with args and returns its stderr in the error when it
// fails, since that is where ip and iptables say what went wrong.
func (ExecRunner) Run(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// nowUnix is the clock lease expiry is compared with.
var nowUnix = func() int64 { return time.Now().Unix() }
