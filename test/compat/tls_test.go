package compat_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govirtd/govirtd/test/deps"
)

// The TLS transport end to end: real virsh (gnutls) against govirtd's TLS
// listener, with a PKI made by scripts/make-test-pki.sh.

// clientDN is the test client certificate's DN as libvirt prints it
// (scripts/make-test-pki.sh).
const clientDN = "C=GB,ST=London,L=London,O=govirtd test,CN=govirtd-test-client"

// makePKI runs scripts/make-test-pki.sh for a server certificate valid for
// names.
func makePKI(t *testing.T, dir string, names ...string) {
	t.Helper()
	deps.Require(t, "openssl")
	script, err := filepath.Abs("../../scripts/make-test-pki.sh")
	if err != nil {
		t.Fatal(err)
	}
	if r := run(t, time.Minute, "sh", append([]string{script, dir}, names...)...); r.Err != nil {
		t.Fatalf("make-test-pki.sh: %s", r)
	}
}

// newTLSHost prepares a host serving TLS with the server credentials of
// the PKI in pki; extra is more configuration.
func newTLSHost(t *testing.T, name, pki, extra string) *Host {
	t.Helper()
	return NewHost(t, HostOptions{Name: name, TLS: true, Extra: fmt.Sprintf(
		"ca_file = %q\ncert_file = %q\nkey_file = %q\n%s",
		filepath.Join(pki, "cacert.pem"), filepath.Join(pki, "servercert.pem"), filepath.Join(pki, "serverkey.pem"), extra)})
}

// TLSURI is the host's qemu+tls URI with a client pkipath.
func (h *Host) TLSURI(pkipath string) string {
	return fmt.Sprintf("qemu+tls://%s/system?pkipath=%s", net.JoinHostPort(h.Addr, fmt.Sprint(h.TLSPort)), pkipath)
}

// waitLog waits until the host's log contains s.
func waitLog(t *testing.T, h *Host, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		data, _ := os.ReadFile(h.LogPath)
		if strings.Contains(string(data), s) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s's log never said %q", h.Name, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTLSVirsh: virsh connects over qemu+tls with a client certificate of
// the CA whose DN is allowed; a certificate of another CA, and a DN off
// the list, are refused before any RPC while the daemon serves on.
func TestTLSVirsh(t *testing.T) {
	t.Parallel()
	deps.Require(t, "virsh")
	pki := t.TempDir()
	a := newTLSHost(t, "tls-a", pki, `tls_allowed_dn_list = [ "C=GB,ST=London,L=London,O=govirtd test,CN=govirtd-test-*" ]`)
	b := newTLSHost(t, "tls-b", pki, `tls_allowed_dn_list = [ "C=GB,*,CN=admin-*" ]`)
	makePKI(t, pki, a.Addr, b.Addr)
	a.Start()
	b.Start()

	if out := strings.TrimSpace(MustVirsh(t, a.TLSURI(pki), "hostname")); out != a.Name {
		t.Errorf("hostname over TLS = %q, want %q", out, a.Name)
	}
	waitLog(t, a, `msg="TLS client accepted" listener=tls`)
	waitLog(t, a, `dn="`+clientDN+`"`)
	// The connection is encrypted, and says so.
	r := Python(t, `
import sys, libvirt
c = libvirt.open(sys.argv[1])
print(c.isEncrypted(), c.isSecure(), c.getHostname())
`, a.TLSURI(pki))
	if r.Err != nil || strings.TrimSpace(r.Stdout) != "1 1 "+a.Name {
		t.Errorf("python-libvirt over TLS: %s", r)
	}

	// A client certificate from an unrelated CA: refused after the
	// handshake, without the confirmation byte.
	r = Virsh(t, a.TLSURI(filepath.Join(pki, "other-client")), "hostname")
	if r.Err == nil {
		t.Fatalf("client certificate of another CA accepted:\n%s", r)
	}
	if !strings.Contains(r.Stderr, "Unable to read TLS confirmation") {
		t.Errorf("refused client's error: %s", r.Stderr)
	}
	waitLog(t, a, "The certificate hasn't got a known issuer.")
	if out := strings.TrimSpace(MustVirsh(t, a.TLSURI(pki), "hostname")); out != a.Name {
		t.Errorf("after a refusal: hostname = %q", out)
	}

	// A good certificate whose DN is not on b's list.
	r = Virsh(t, b.TLSURI(pki), "hostname")
	if r.Err == nil {
		t.Fatalf("DN outside tls_allowed_dn_list accepted:\n%s", r)
	}
	waitLog(t, b, "Client's Distinguished Name is not on the list of allowed clients (tls_allowed_dn_list)")
	waitLog(t, b, `dn="`+clientDN+`"`)
	if out := strings.TrimSpace(MustVirsh(t, b.URI(), "hostname")); out != b.Name {
		t.Errorf("b over TCP after a refusal: %q", out)
	}
}

// TestTLSStartupErrors: missing credentials and auth_tls = "sasl" stop the
// daemon at start, naming the problem.
func TestTLSStartupErrors(t *testing.T) {
	t.Parallel()
	pki := t.TempDir() // empty: no credentials at all
	for _, tt := range []struct {
		name, extra, want string
	}{
		{"missing CA", "", "cannot read CA certificate '" + filepath.Join(pki, "cacert.pem") + "' (ca_file): no such file or directory"},
		{"sasl", `auth_tls = "sasl"`, `auth_tls = "sasl": only "none" is implemented by govirtd`},
	} {
		h := newTLSHost(t, "tls-bad", pki, tt.extra)
		r := run(t, 30*time.Second, daemonBin, "-f", h.Config, "--listen")
		if r.Err == nil || !strings.Contains(r.Stderr, tt.want) {
			t.Errorf("%s: daemon start: %s\nwant an error containing %q", tt.name, r, tt.want)
		}
	}
}

// TestTLSMigratePeerToPeer: --p2p over qemu+tls, the source daemon
// dialling the destination with the client certificate named by the
// destination URI's pkipath; then back with --p2p --tunnelled.
func TestTLSMigratePeerToPeer(t *testing.T) {
	t.Parallel()
	deps.Require(t, "virsh", "qemu-system-x86_64")
	pki := t.TempDir()
	a := newTLSHost(t, "tlsmig-a", pki, "")
	b := newTLSHost(t, "tlsmig-b", pki, "")
	makePKI(t, pki, a.Addr, b.Addr)
	a.Start()
	b.Start()
	const name = "tm"
	serial := filepath.Join(a.Dir, "guest.serial")
	defineGuest(t, a, GuestOptions{Name: name, Serial: serial, DirtyMB: 16, DirtyRate: 4})
	MustVirsh(t, a.URI(), "start", name)
	WaitTicks(t, serial, 2, 60*time.Second)

	before, _ := LastTick(serial)
	r := run(t, 2*time.Minute, "virsh", "-c", a.TLSURI(pki), "migrate", "--live", "--p2p", name, b.TLSURI(pki))
	if r.Err != nil {
		t.Fatalf("p2p migration over TLS: %s", r)
	}
	mid := checkMoved(t, a, b, name, serial, before)
	// The destination saw the source daemon's certificate.
	waitLog(t, b, `dn="`+clientDN+`"`)

	r = run(t, 2*time.Minute, "virsh", "-c", b.TLSURI(pki), "migrate", "--live", "--p2p", "--tunnelled", name, a.TLSURI(pki))
	if r.Err != nil {
		t.Fatalf("tunnelled p2p migration over TLS: %s", r)
	}
	checkMoved(t, b, a, name, serial, mid)

	// A destination URI whose pkipath holds a certificate of another CA:
	// the destination refuses the source daemon, the guest stays put.
	before, _ = LastTick(serial)
	r = run(t, 2*time.Minute, "virsh", "-c", a.URI(), "migrate", "--live", "--p2p", name, b.TLSURI(filepath.Join(pki, "other-client")))
	if r.Err == nil {
		t.Fatal("p2p migration with a foreign client certificate succeeded")
	}
	if !strings.Contains(r.Stderr, "server verification (of our certificate or IP address) failed") {
		t.Errorf("refused p2p migration's error: %s", r.Stderr)
	}
	waitLog(t, b, "The certificate hasn't got a known issuer.")
	if st := domstate(t, a, name); !strings.HasPrefix(st, "running") {
		t.Errorf("source after a refused migration: %q", st)
	}
	WaitTicks(t, serial, before.N+2, 30*time.Second)
	MustVirsh(t, a.URI(), "destroy", name)
}

// qemuTLSDir lays out x509 credentials under the names QEMU's
// tls-creds-x509 reads (migrate_tls_x509_cert_dir), from the test PKI:
// the CA the host trusts, and the PKI's server and client pairs.
func qemuTLSDir(t *testing.T, dir, caCert, pki string) {
	t.Helper()
	for dst, src := range map[string]string{
		"ca-cert.pem": caCert, "server-cert.pem": filepath.Join(pki, "servercert.pem"), "server-key.pem": filepath.Join(pki, "serverkey.pem"),
		"client-cert.pem": filepath.Join(pki, "clientcert.pem"), "client-key.pem": filepath.Join(pki, "clientkey.pem"),
	} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, dst), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestMigrateTLS: virsh migrate --tls, managed and peer-to-peer: QEMU's
// own stream is TLS with the credentials of qemu.conf's
// migrate_tls_x509_cert_dir, the destination's certificate checked
// against the address the stream goes to and the source's client
// certificate checked by the destination (migrate_tls_x509_verify). To a
// destination whose certificate does not name its address the handshake
// fails and the guest runs on at the source; migrate_tls_force refuses a
// migration without --tls.
func TestMigrateTLS(t *testing.T) {
	t.Parallel()
	deps.Require(t, "virsh", "qemu-system-x86_64")
	pki, good := t.TempDir(), t.TempDir()
	conf := func(dir string, extra string) string {
		return fmt.Sprintf("migrate_tls_x509_cert_dir = %q\n%s", dir, extra)
	}
	a := StartHost(t, HostOptions{Name: "mtls-a", QemuConf: conf(good, "")})
	b := StartHost(t, HostOptions{Name: "mtls-b", QemuConf: conf(good, "migrate_tls_force = 1\n")})
	c := StartHost(t, HostOptions{Name: "mtls-c", QemuConf: conf(good, "")})
	// One server certificate for every host, naming a's and b's
	// addresses but not c's.
	makePKI(t, pki, a.Addr, b.Addr)
	qemuTLSDir(t, good, filepath.Join(pki, "cacert.pem"), pki)

	const name = "mt"
	serial := filepath.Join(a.Dir, "guest.serial")
	defineGuest(t, a, GuestOptions{Name: name, Serial: serial, DirtyMB: 16, DirtyRate: 4})
	MustVirsh(t, a.URI(), "start", name)
	WaitTicks(t, serial, 2, 60*time.Second)

	// b takes only TLS migrations.
	if r := Virsh(t, a.URI(), "migrate", "--live", name, b.URI()); r.Err == nil || !strings.Contains(r.Stderr, "allows migration only with VIR_MIGRATE_TLS flag") {
		t.Fatalf("migration without --tls to a migrate_tls_force host: %s", r)
	}
	before, _ := LastTick(serial)
	if r := run(t, 2*time.Minute, "virsh", "-c", a.URI(), "migrate", "--live", "--tls", name, b.URI()); r.Err != nil {
		t.Fatalf("migrate --tls: %s", r)
	}
	mid := checkMoved(t, a, b, name, serial, before)
	if r := run(t, 2*time.Minute, "virsh", "-c", b.URI(), "migrate", "--live", "--tls", "--p2p", name, a.URI()); r.Err != nil {
		t.Fatalf("migrate --tls --p2p: %s", r)
	}
	checkMoved(t, b, a, name, serial, mid)

	// c's certificate does not name c's address: the source's QEMU
	// refuses the TLS handshake.
	before, _ = LastTick(serial)
	r := run(t, 2*time.Minute, "virsh", "-c", a.URI(), "migrate", "--live", "--tls", name, c.URI())
	if r.Err == nil {
		t.Fatal("--tls migration to a destination whose certificate does not name it succeeded")
	}
	// The source's Perform failed on the certificate. The destination's
	// QEMU exits on the failed handshake: when that comes before Finish,
	// Finish reports it and the client shows that error instead (as with
	// libvirtd); either names the cause.
	waitLog(t, a, "Certificate does not match the hostname "+c.Addr)
	if !strings.Contains(r.Stderr, "Certificate does not match the hostname") && !strings.Contains(r.Stderr, "qemu unexpectedly closed the monitor (vm='"+name+"')") {
		t.Errorf("refused TLS migration's error: %s", r.Stderr)
	}
	if st := domstate(t, a, name); !strings.HasPrefix(st, "running") {
		t.Fatalf("source after the refused migration: %q", st)
	}
	if pids := c.QEMUPids(); len(pids) != 0 {
		t.Errorf("destination QEMU left running: %v", pids)
	}
	WaitTicks(t, serial, before.N+2, 30*time.Second)
	// A plain migration still works afterwards: the credentials are gone
	// from the source's migration parameters.
	before, _ = LastTick(serial)
	if r := run(t, 2*time.Minute, "virsh", "-c", a.URI(), "migrate", "--live", name, c.URI()); r.Err != nil {
		t.Fatalf("plain migration after a TLS one: %s", r)
	}
	checkMoved(t, a, c, name, serial, before)
	MustVirsh(t, c.URI(), "destroy", name)
}

// TestMigrateCopyStorageTLS: --copy-storage-all --tls: the disk's NBD
// connection uses the migration's TLS credentials too (the destination's
// NBD server requires it), and the guest, writing its disk all along,
// reads back every block on the destination.
func TestMigrateCopyStorageTLS(t *testing.T) {
	t.Parallel()
	deps.Require(t, "virsh", "qemu-system-x86_64", "qemu-img")
	pki, good := t.TempDir(), t.TempDir()
	conf := fmt.Sprintf("migrate_tls_x509_cert_dir = %q\n", good)
	a := StartHost(t, HostOptions{Name: "stls-a", QemuConf: conf})
	b := StartHost(t, HostOptions{Name: "stls-b", QemuConf: conf})
	makePKI(t, pki, a.Addr, b.Addr)
	qemuTLSDir(t, good, filepath.Join(pki, "cacert.pem"), pki)
	serial, _, dstImg, dstXML := diskGuest(t, a, b, "stls", "qcow2", 512)
	waitDiskCheck(t, serial, 0, time.Minute)
	before, _ := LastTick(serial)
	if r := run(t, 3*time.Minute, "virsh", "-c", a.URI(), "migrate", "--live", "--copy-storage-all", "--tls", "--xml", dstXML, "stls", b.URI()); r.Err != nil {
		t.Fatalf("migrate --copy-storage-all --tls: %s", r)
	}
	checkMoved(t, a, b, "stls", serial, before)
	last := waitDiskCheck(t, serial, before.N, time.Minute)
	waitDiskCheck(t, serial, last.N, time.Minute)
	if blk := MustVirsh(t, b.URI(), "domblklist", "stls"); !strings.Contains(blk, dstImg) {
		t.Errorf("destination disks:\n%s", blk)
	}
	MustVirsh(t, b.URI(), "destroy", "stls")
}
