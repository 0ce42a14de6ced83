package qemu

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govirtd/govirtd/driver/qemu/convergence"
)

func TestQemuConfConvergenceGuardKeys(t *testing.T) {
	write := func(text string) string {
		p := filepath.Join(t.TempDir(), "qemu.conf")
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	c, err := loadQemuConf(write("migration_convergence_stall = 30\nmigration_convergence_actions = [ \"postcopy\", \"abort\" ]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.ConvergenceStall != 30*time.Second || len(c.ConvergenceActions) != 2 || c.ConvergenceActions[0] != convergence.Postcopy {
		t.Fatalf("got stall %s actions %v", c.ConvergenceStall, c.ConvergenceActions)
	}
	if d, _ := loadQemuConf(""); d.ConvergenceStall != 0 {
		t.Fatal("the guard is on by default")
	}
	for text, want := range map[string]string{
		"migration_convergence_stall = -1\n":               "expected seconds",
		"migration_convergence_stall = \"30\"\n":           "expected seconds",
		"migration_convergence_actions = \"abort\"\n":      "expected a list of strings",
		"migration_convergence_actions = [ \"reboot\" ]\n": "unknown convergence guard action",
		"migration_convergence_actions = [ ]\n":            "expected a list of strings",
	} {
		if _, err := loadQemuConf(write(text)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", text, err, want)
		}
	}
}
