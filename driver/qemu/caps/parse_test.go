package caps

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func readFixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseVersion(t *testing.T) {
	got, err := parseVersion(readFixture(t, "x86_64-version.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if got != 7002022 {
		t.Errorf("fixture version = %d, want 7002022", got)
	}

	for _, tc := range []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\n", 7002022, true},
		{"QEMU emulator version 8.0.0\nCopyright", 8000000, true},
		{"QEMU emulator version 2.12.0(qemu-kvm-ev-2.12.0)", 2012000, true},
		{"QEMU emulator version 9.1", 9001000, true},
		{"qemu: unknown option", 0, false},
		{"", 0, false},
	} {
		got, err := parseVersion(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseVersion(%q) = %d, %v; want %d, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func findMachine(ms []machineType, name string) (machineType, bool) {
	for _, m := range ms {
		if m.name == name {
			return m, true
		}
	}
	return machineType{}, false
}

// checkX86Machines asserts what both parsers must find in the QEMU 7.2
// x86_64 fixtures.
func checkX86Machines(t *testing.T, ms []machineType) {
	t.Helper()
	if len(ms) == 0 || ms[0].name != "pc-i440fx-7.2" || !ms[0].isDefault || ms[0].alias != "pc" {
		t.Fatalf("first machine = %+v, want default pc-i440fx-7.2 aliased pc", ms[0])
	}
	for _, tc := range []struct {
		name       string
		alias      string
		maxCPUs    int
		deprecated bool
	}{
		{"pc-q35-7.2", "q35", 288, false},
		{"pc-q35-2.7", "", 255, false},
		{"pc-q35-2.8", "", 288, false},
		{"pc-q35-4.0.1", "", 288, false},
		{"pc-i440fx-1.4", "", 255, true},
		{"pc-i440fx-2.0", "", 255, false},
		{"microvm", "", 288, false},
		{"isapc", "", 1, false},
		{"none", "", 1, false},
	} {
		m, ok := findMachine(ms, tc.name)
		if !ok {
			t.Errorf("machine %s missing", tc.name)
			continue
		}
		if m.alias != tc.alias || m.maxCPUs != tc.maxCPUs || m.deprecated != tc.deprecated || m.isDefault {
			t.Errorf("machine %s = %+v, want alias %q maxCPUs %d deprecated %v", tc.name, m, tc.alias, tc.maxCPUs, tc.deprecated)
		}
	}
	if _, ok := findMachine(ms, "pc"); ok {
		t.Error("alias pc must not be a machine of its own")
	}
	if n := len(ms); n != 59 {
		t.Errorf("got %d machines, want 59", n)
	}
}

func TestParseMachineHelp(t *testing.T) {
	ms, err := parseMachineHelp(readFixture(t, "x86_64-machine-help.txt"))
	if err != nil {
		t.Fatal(err)
	}
	checkX86Machines(t, ms)
	// Apart from the default, the help order is kept.
	if ms[1].name != "microvm" || ms[2].name != "pc-i440fx-7.1" {
		t.Errorf("order after default: %s, %s", ms[1].name, ms[2].name)
	}
	if _, err := parseMachineHelp("Supported machines are:\n"); err == nil {
		t.Error("empty list accepted")
	}
}

func TestParseQMPMachines(t *testing.T) {
	ms, err := parseQMPMachines([]byte(readFixture(t, "x86_64-qmp-query-machines.txt")))
	if err != nil {
		t.Fatal(err)
	}
	checkX86Machines(t, ms)

	if _, err := parseQMPMachines([]byte(`{"QMP": {}}` + "\n" + `{"error": {"class": "GenericError", "desc": "boom"}}`)); err == nil {
		t.Error("QMP error accepted")
	}
	if _, err := parseQMPMachines([]byte(`{"QMP": {}}` + "\n" + `{"return": {}}`)); err == nil {
		t.Error("transcript without query-machines reply accepted")
	}
}

// The static cpu-max table used without QMP must agree with what QEMU 7.2
// really reports.
func TestStaticMaxCPUsMatchesQMP(t *testing.T) {
	ms, err := parseQMPMachines([]byte(readFixture(t, "x86_64-qmp-query-machines.txt")))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if got := staticMaxCPUs(m.name); got != m.maxCPUs {
			t.Errorf("staticMaxCPUs(%s) = %d, QEMU says %d", m.name, got, m.maxCPUs)
		}
	}
}

func TestExpandMachines(t *testing.T) {
	got := expandMachines([]machineType{
		{name: "pc-i440fx-7.2", alias: "pc", maxCPUs: 255, isDefault: true},
		{name: "pc-q35-7.2", alias: "q35", maxCPUs: 288},
		{name: "pc-i440fx-1.4", maxCPUs: 255, deprecated: true},
	})
	want := []Machine{
		{Name: "pc-i440fx-7.2", MaxCPUs: 255, Default: true},
		{Name: "pc", Canonical: "pc-i440fx-7.2", MaxCPUs: 255, Default: true},
		{Name: "pc-q35-7.2", MaxCPUs: 288},
		{Name: "q35", Canonical: "pc-q35-7.2", MaxCPUs: 288},
		{Name: "pc-i440fx-1.4", MaxCPUs: 255, Deprecated: true},
	}
	if !slices.Equal(got, want) {
		t.Errorf("expandMachines =\n%+v\nwant\n%+v", got, want)
	}
}

func TestCPUList(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
	}{
		{"0", "0"},
		{"0-1", "0-1"},
		{"0,2", "0,2"},
		{"3,0-1,2", "0-3"},
		{"0-3,8,10-11\n", "0-3,8,10-11"},
	} {
		l, err := parseCPUList(tc.in)
		if err != nil {
			t.Fatalf("parseCPUList(%q): %v", tc.in, err)
		}
		if got := formatCPUList(l); got != tc.want {
			t.Errorf("round trip of %q = %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, bad := range []string{"a", "3-1", "1-"} {
		if _, err := parseCPUList(bad); err == nil {
			t.Errorf("parseCPUList(%q) accepted", bad)
		}
	}
}

func TestNormalizeUUID(t *testing.T) {
	got, err := normalizeUUID("2B1C5F3E000040008000 0123456789AB")
	if err != nil || got != "2b1c5f3e-0000-4000-8000-0123456789ab" {
		t.Errorf("normalizeUUID = %q, %v", got, err)
	}
	for _, bad := range []string{"", "1234", "zz1c5f3e-0000-4000-8000-0123456789ab"} {
		if _, err := normalizeUUID(bad); err == nil {
			t.Errorf("normalizeUUID(%q) accepted", bad)
		}
	}
}

func TestEmulatorsByArch(t *testing.T) {
	got, err := emulatorsByArch("x86_64", []string{"/opt/q/qemu-system-x86_64"})
	if err != nil {
		t.Fatal(err)
	}
	if got["x86_64"] != "/opt/q/qemu-system-x86_64" || got["i686"] != "/opt/q/qemu-system-x86_64" {
		t.Errorf("x86_64 only: %v", got)
	}
	got, err = emulatorsByArch("x86_64", []string{"/a/qemu-system-x86_64", "/b/qemu-system-i386", "/c/qemu-system-aarch64"})
	if err != nil {
		t.Fatal(err)
	}
	if got["i686"] != "/b/qemu-system-i386" || len(got) != 2 {
		t.Errorf("with i386: %v", got)
	}
	if _, err := emulatorsByArch("x86_64", []string{"/usr/bin/kvm"}); err == nil {
		t.Error("unrecognisable emulator name accepted")
	}
}
