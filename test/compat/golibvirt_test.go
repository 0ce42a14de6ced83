package compat_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/govirtd/govirtd/test/deps"
)

// TestGoLibvirtIntegrationSuite runs go-libvirt's own integration tests
// (libvirt_integration_test.go, build tag integration, the version this
// module requires), unmodified, against govirtd, with the set-up its CI
// workflow does: a running domain "test" from its testdata, a dir pool
// "test", a secret. The suite dials 127.0.0.1:16509, so the daemon and the
// suite run in a network namespace of their own, where that address is
// theirs alone. The set-up's paths (/var/lib/libvirt/images/test.raw, the
// pool at /tmp) are moved into the test's directory; the suite checks no
// path. Only TestConnectToURIIntegration fails: it needs libvirt's test
// driver (test:///default).
func TestGoLibvirtIntegrationSuite(t *testing.T) {
	deps.Require(t, "qemu-img", "virsh", "ip", "qemu-system-x86_64")
	h := NewHost(t, HostOptions{NetNS: true})
	conf, err := os.ReadFile(h.Config)
	if err != nil {
		t.Fatal(err)
	}
	c := regexp.MustCompile(`(?m)^listen_addr = .*$`).ReplaceAllString(string(conf), `listen_addr = "127.0.0.1"`)
	c = regexp.MustCompile(`(?m)^tcp_port = .*$`).ReplaceAllString(c, `tcp_port = "16509"`)
	if err := os.WriteFile(h.Config, []byte(c), 0o644); err != nil {
		t.Fatal(err)
	}
	h.Start()
	uri := h.UnixURI()

	// The suite's test data, from the module go-libvirt is built from.
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/digitalocean/go-libvirt").Output()
	if err != nil {
		t.Fatalf("go list go-libvirt: %v", err)
	}
	modDir := strings.TrimSpace(string(out))
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(modDir, "testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	img := filepath.Join(h.Dir, "test.raw")
	if r := run(t, 30*time.Second, "qemu-img", "create", "-f", "raw", "-o", "size=10M", img); r.Err != nil {
		t.Fatal(r)
	}
	write := func(name, content string) string {
		p := filepath.Join(h.Dir, name)
		os.WriteFile(p, []byte(content), 0o644)
		return p
	}
	poolDir := filepath.Join(h.Dir, "pool")
	os.Mkdir(poolDir, 0o755)
	MustVirsh(t, uri, "define", write("test-domain.xml", strings.ReplaceAll(read("test-domain.xml"), "/var/lib/libvirt/images/test.raw", img)))
	MustVirsh(t, uri, "start", "test")
	t.Cleanup(func() { Virsh(t, uri, "destroy", "test") })
	MustVirsh(t, uri, "pool-create", write("test-pool.xml", strings.ReplaceAll(read("test-pool.xml"), "<path>/tmp</path>", "<path>"+poolDir+"</path>")))
	MustVirsh(t, uri, "secret-define", filepath.Join(modDir, "testdata", "test-secret.xml"))

	suite := filepath.Join(h.Dir, "go-libvirt.test")
	build := exec.Command("go", "test", "-c", "-tags", "integration", "-o", suite, "github.com/digitalocean/go-libvirt")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build go-libvirt's tests: %v\n%s", err, b)
	}
	r := run(t, 3*time.Minute, deps.Command(t, "ip"), "netns", "exec", h.NetNS, suite, "-test.v", "-test.count=1", "-test.timeout=150s")
	passed := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^--- PASS: (\S+)`).FindAllStringSubmatch(r.Stdout, -1) {
		passed[m[1]] = true
	}
	failed := regexp.MustCompile(`(?m)^--- FAIL: (\S+)`).FindAllStringSubmatch(r.Stdout, -1)
	// The integration tests are the ones in libvirt_integration_test.go.
	src, err := os.ReadFile(filepath.Join(modDir, "libvirt_integration_test.go"))
	if err != nil {
		t.Fatal(err)
	}
	// The one test that needs another driver: it opens test:///default,
	// libvirt's test driver, which govirtd (a QEMU driver) refuses as
	// libvirtd without that driver does.
	const otherDriver = "TestConnectToURIIntegration"
	var integration, missing []string
	for _, m := range regexp.MustCompile(`(?m)^func (Test\w+)\(t \*testing\.T\)`).FindAllStringSubmatch(string(src), -1) {
		switch {
		case m[1] == otherDriver:
		case passed[m[1]]:
			integration = append(integration, m[1])
		default:
			missing = append(missing, m[1])
		}
	}
	t.Logf("go-libvirt suite: %d tests passed, %d failed; integration tests passed: %d (%s)", len(passed), len(failed), len(integration), strings.Join(integration, " "))
	if len(failed) != 1 || failed[0][1] != otherDriver || !strings.Contains(r.Stdout, "no connection driver available for test:///default") {
		t.Fatalf("go-libvirt's suite: want only %s to fail (test:///default), got %v:\n%s", otherDriver, failed, r)
	}
	if len(missing) > 0 || len(integration) < 18 {
		t.Errorf("integration tests that did not pass: %v (passed: %d)", missing, len(integration))
	}
}
