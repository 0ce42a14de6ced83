package server

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/govirtd/govirtd/server/config"
)

// rdn builds a DER RDNSequence from attribute lists, one list per RDN, in
// the order given (which is the order a certificate carries).
func rdn(t *testing.T, rdns ...[]pkix.AttributeTypeAndValue) []byte {
	t.Helper()
	var seq pkix.RDNSequence
	for _, r := range rdns {
		seq = append(seq, pkix.RelativeDistinguishedNameSET(r))
	}
	der, err := asn1.Marshal(seq)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func atv(oid asn1.ObjectIdentifier, v any) pkix.AttributeTypeAndValue {
	return pkix.AttributeTypeAndValue{Type: oid, Value: v}
}

// raw is an attribute value with an explicit string tag.
func raw(tag int, b []byte) asn1.RawValue {
	return asn1.RawValue{Class: asn1.ClassUniversal, Tag: tag, Bytes: b}
}

var (
	oidC     = asn1.ObjectIdentifier{2, 5, 4, 6}
	oidST    = asn1.ObjectIdentifier{2, 5, 4, 8}
	oidL     = asn1.ObjectIdentifier{2, 5, 4, 7}
	oidO     = asn1.ObjectIdentifier{2, 5, 4, 10}
	oidOU    = asn1.ObjectIdentifier{2, 5, 4, 11}
	oidCN    = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidDC    = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}
	oidEmail = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}
)

func TestLibvirtDN(t *testing.T) {
	one := func(a ...pkix.AttributeTypeAndValue) []pkix.AttributeTypeAndValue { return a }
	tests := []struct {
		name string
		der  []byte
		want string
	}{
		{"libvirtd.conf example, certificate order kept",
			rdn(t, one(atv(oidC, "GB")), one(atv(oidST, "London")), one(atv(oidL, "London")), one(atv(oidO, "Red Hat")), one(atv(oidCN, "client1"))),
			"C=GB,ST=London,L=London,O=Red Hat,CN=client1"},
		{"CN first stays first",
			rdn(t, one(atv(oidCN, "host")), one(atv(oidO, "Example"))),
			"CN=host,O=Example"},
		{"domain components and e-mail",
			rdn(t, one(atv(oidDC, raw(22, []byte("org")))), one(atv(oidDC, raw(22, []byte("example")))), one(atv(oidCN, "hosta")), one(atv(oidEmail, raw(22, []byte("root@example.org"))))),
			"DC=org,DC=example,CN=hosta,EMAIL=root@example.org"},
		{"multi-valued RDN",
			rdn(t, one(atv(oidO, "Example")), one(atv(oidOU, "ops"), atv(oidCN, "hosta"))),
			"O=Example,OU=ops+CN=hosta"},
		{"RFC 4514 escapes",
			rdn(t, one(atv(oidO, `Acme, Inc.+"x"\<y>;`)), one(atv(oidCN, "#lead")), one(atv(oidOU, " both "))),
			`O=Acme\, Inc.\+\"x\"\\\<y\>\;,CN=\#lead,OU=\ both\ `},
		{"UTF-8 string as is",
			rdn(t, one(atv(oidO, raw(12, []byte("Zürich AG"))))),
			"O=Zürich AG"},
		{"BMP string to UTF-8",
			rdn(t, one(atv(oidCN, raw(30, []byte{0, 'h', 0, 0xe9})))),
			"CN=hé"},
		{"non-ASCII teletex in hex, escaped",
			rdn(t, one(atv(oidCN, raw(20, []byte{0xe9, 'a'})))),
			`CN=\#e961`},
		{"unknown attribute type: OID and DER in hex",
			rdn(t, one(atv(asn1.ObjectIdentifier{1, 2, 3, 4}, raw(12, []byte("a"))))),
			"1.2.3.4=#0c0161"},
		{"country not a PrintableString: DER in hex",
			rdn(t, one(atv(oidC, raw(12, []byte("GB"))))),
			"C=#0c024742"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LibvirtDN(tt.der)
			if err != nil || got != tt.want {
				t.Errorf("LibvirtDN = %q, %v\nwant %q", got, err, tt.want)
			}
		})
	}
	// The reason LibvirtDN exists: Go prints RDNs the other way round.
	var n pkix.Name
	var seq pkix.RDNSequence
	asn1.Unmarshal(tests[0].der, &seq)
	n.FillFromRDNSequence(&seq)
	if s := n.String(); s != "CN=client1,O=Red Hat,L=London,ST=London,C=GB" {
		t.Errorf("pkix.Name.String() = %q; the test's premise changed", s)
	}
	if _, err := LibvirtDN(rdn(t)); err == nil {
		t.Error("an empty DN should be an error, as gnutls_x509_crt_get_dn fails on it")
	}
	if _, err := LibvirtDN([]byte{0x30, 0x03, 1, 2}); err == nil {
		t.Error("garbage should be an error")
	}
}

func TestFnmatch(t *testing.T) {
	dn := "C=GB,ST=London,L=London,O=Red Hat,CN=client1"
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"C=GB,ST=London,L=London,O=Red Hat,CN=*", dn, true},
		{"C=GB,ST=London,L=London,O=Red Hat,CN=client?", dn, true},
		{"C=GB,*,CN=client1", dn, true},
		{"*", dn, true},
		{"*", "", true},
		{"", dn, false},
		{"C=GB,ST=London,L=London,O=Red Hat,CN=client", dn, false},
		{"CN=client1", dn, false}, // the whole DN must match
		{"*CN=client[0-9]", dn, true},
		{"*CN=client[!0-9]", dn, false},
		{"*CN=client[^1]", dn, false},
		{"*CN=client[[:digit:]]", dn, true},
		{"*CN=client[]1]", dn, true},
		{"*,O=Red?Hat,*", dn, true},
		{"a/*", "a/b/c", true}, // no FNM_PATHNAME: '*' crosses '/'
		{`O=Acme\, Inc.`, `O=Acme, Inc.`, true},
		{`O=Acme\\, Inc.`, `O=Acme\, Inc.`, true},
		{`x\*`, `x*`, true},
		{`x\*`, `xy`, false},
		{`x\`, `x\`, false},    // glibc: a trailing backslash matches nothing
		{"[abc", "[abc", true}, // unclosed '[' is literal
		{"O=Zürich*", "O=Zürich AG", true},
		{"??", "ü!", true},
	}
	for _, tt := range tests {
		if got := fnmatch(tt.pattern, tt.name); got != tt.want {
			t.Errorf("fnmatch(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
	if dnAllowed(dn, []string{}) {
		t.Error("an empty tls_allowed_dn_list must allow no one, as in libvirtd")
	}
	if !dnAllowed(dn, []string{"nope", "C=GB,*"}) {
		t.Error("any matching pattern should do")
	}
}

// testPKI is a CA with a server certificate, and helpers to make clients.
type testPKI struct {
	t      *testing.T
	dir    string
	ca     *x509.Certificate
	caKey  crypto.Signer
	caFile string
	serial int64
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newPKI(t *testing.T, dir, name string) *testPKI {
	t.Helper()
	p := &testPKI{t: t, dir: dir, caKey: newKey(t), serial: 100}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, p.caKey.Public(), p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	p.ca, _ = x509.ParseCertificate(der)
	p.caFile = p.write(name+"-cacert.pem", "CERTIFICATE", der)
	return p
}

func (p *testPKI) write(name, typ string, der []byte) string {
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		p.t.Fatal(err)
	}
	return path
}

// issue signs a leaf certificate; subject is the raw DER subject so that
// the test controls its RDN order exactly.
func (p *testPKI) issue(name string, subject []byte, server bool, mutate func(*x509.Certificate)) (certFile, keyFile string, pair tls.Certificate) {
	p.t.Helper()
	key := newKey(p.t)
	p.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(p.serial), RawSubject: subject,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	if mutate != nil {
		mutate(tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, key.Public(), p.caKey)
	if err != nil {
		p.t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile = p.write(name+"cert.pem", "CERTIFICATE", der)
	keyFile = p.write(name+"key.pem", "PRIVATE KEY", kder)
	pair, err = tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		p.t.Fatal(err)
	}
	return certFile, keyFile, pair
}

// syncBuffer collects log output from concurrent handshakes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// tlsFixture is a TLS listener with a CA, an unrelated CA and clients.
type tlsFixture struct {
	pki, other *testPKI
	cfg        *config.Config
	clientDN   []byte
	good       tls.Certificate
}

func newTLSFixture(t *testing.T) *tlsFixture {
	dir := t.TempDir()
	f := &tlsFixture{pki: newPKI(t, dir, "ca"), other: newPKI(t, dir, "otherca")}
	one := func(a ...pkix.AttributeTypeAndValue) []pkix.AttributeTypeAndValue { return a }
	f.clientDN = rdn(t, one(atv(oidC, "GB")), one(atv(oidST, "London")), one(atv(oidL, "London")), one(atv(oidO, "Red Hat")), one(atv(oidCN, "client1")))
	certFile, keyFile, _ := f.pki.issue("server", rdn(t, one(atv(oidCN, "127.0.0.1"))), true, nil)
	_, _, f.good = f.pki.issue("client", f.clientDN, false, nil)
	f.cfg = config.Default()
	f.cfg.CAFile, f.cfg.CertFile, f.cfg.KeyFile = f.pki.caFile, certFile, keyFile
	return f
}

// serve starts a TLS listener for cfg; accepted connections arrive on the
// returned channel.
func (f *tlsFixture) serve(t *testing.T) (addr string, accepted chan net.Conn, logs *syncBuffer) {
	t.Helper()
	tctx, err := NewTLSContext(f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs = &syncBuffer{}
	tl := newTLSListener(l, tctx, 10, slog.New(slog.NewTextHandler(logs, nil)))
	t.Cleanup(func() { tl.Close() })
	accepted = make(chan net.Conn, 10)
	go func() {
		for {
			c, err := tl.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	return l.Addr().String(), accepted, logs
}

// connect does a client handshake and reads libvirt's confirmation byte.
func (f *tlsFixture) connect(t *testing.T, addr string, cert *tls.Certificate) (*tls.Conn, error) {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(f.pki.ca)
	conf := &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}
	if cert != nil {
		conf.Certificates = []tls.Certificate{*cert}
	}
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	tc := tls.Client(nc, conf)
	if err := tc.Handshake(); err != nil {
		nc.Close()
		return nil, err
	}
	var b [1]byte
	if _, err := io.ReadFull(tc, b[:]); err != nil {
		nc.Close()
		return nil, err
	}
	if b[0] != 1 {
		nc.Close()
		return nil, errors.New("confirmation byte is not 1")
	}
	return tc, nil
}

func expectAccepted(t *testing.T, f *tlsFixture, addr string, accepted chan net.Conn, cert *tls.Certificate) {
	t.Helper()
	c, err := f.connect(t, addr, cert)
	if err != nil {
		t.Fatalf("client refused: %v", err)
	}
	defer c.Close()
	select {
	case sc := <-accepted:
		// The connection carries data both ways after the byte.
		go sc.Write([]byte("pong"))
		c.Write([]byte("ping"))
		buf := make([]byte, 4)
		if _, err := io.ReadFull(sc, buf); err != nil || string(buf) != "ping" {
			t.Errorf("server read %q, %v", buf, err)
		}
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "pong" {
			t.Errorf("client read %q, %v", buf, err)
		}
		sc.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("server never handed over the accepted client")
	}
}

func expectRefused(t *testing.T, f *tlsFixture, addr string, accepted chan net.Conn, logs *syncBuffer, cert *tls.Certificate, reason string) {
	t.Helper()
	c, err := f.connect(t, addr, cert)
	if err == nil {
		c.Close()
		t.Fatal("client accepted, want refused")
	}
	// Refused after the handshake, before any byte: the server closes
	// the socket and hands nothing to the RPC layer.
	select {
	case <-accepted:
		t.Fatal("a refused client reached the RPC layer")
	default:
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), reason) {
		if time.Now().After(deadline) {
			t.Fatalf("refusal not logged with %q; log:\n%s", reason, logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "refusing TLS client") {
		t.Errorf("log does not say the client was refused:\n%s", logs)
	}
}

func TestTLSValidClientGetsConfirmation(t *testing.T) {
	f := newTLSFixture(t)
	addr, accepted, logs := f.serve(t)
	expectAccepted(t, f, addr, accepted, &f.good)
	if !strings.Contains(logs.String(), `dn="C=GB,ST=London,L=London,O=Red Hat,CN=client1"`) {
		t.Errorf("accepted client's DN not logged in libvirt's form:\n%s", logs)
	}
}

func TestTLSRefusals(t *testing.T) {
	f := newTLSFixture(t)
	_, _, foreign := f.other.issue("foreign", f.clientDN, false, nil)
	// A critical extKeyUsage that allows a server only: libvirt refuses
	// it for a client (a non-critical one would only be warned about).
	ekuServer, _ := asn1.Marshal([]asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 7, 3, 1}})
	_, _, serverOnly := f.pki.issue("serveronly", f.clientDN, false, func(c *x509.Certificate) {
		c.ExtKeyUsage = nil
		c.ExtraExtensions = []pkix.Extension{{Id: oidExtKeyUsage, Critical: true, Value: ekuServer}}
	})
	_, _, isCA := f.pki.issue("isca", f.clientDN, false, func(c *x509.Certificate) { c.IsCA = true })
	tests := []struct {
		name   string
		cert   *tls.Certificate
		reason string
	}{
		{"no certificate", nil, "Unable to verify TLS peer: No certificate was found."},
		{"certificate from another CA", &foreign, "The certificate hasn't got a known issuer."},
		{"server-only purpose", &serverOnly, "Certificate [session] purpose does not allow use with a TLS client"},
		{"CA certificate", &isCA, "basic constraints show a CA, but we need one for a client"},
	}
	addr, accepted, logs := f.serve(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expectRefused(t, f, addr, accepted, logs, tt.cert, tt.reason)
		})
	}
	// The listener still serves good clients after all that.
	expectAccepted(t, f, addr, accepted, &f.good)
}

func TestTLSAllowedDNList(t *testing.T) {
	f := newTLSFixture(t)
	f.cfg.TLSAllowedDNList = []string{"C=GB,ST=London,L=London,O=Red Hat,CN=*"}
	addr, accepted, _ := f.serve(t)
	expectAccepted(t, f, addr, accepted, &f.good)

	f.cfg.TLSAllowedDNList = []string{"C=GB,ST=London,L=London,O=Red Hat,CN=admin*", "CN=client1"}
	addr, accepted, logs := f.serve(t)
	expectRefused(t, f, addr, accepted, logs, &f.good, "Client's Distinguished Name is not on the list of allowed clients (tls_allowed_dn_list)")
	if !strings.Contains(logs.String(), `dn="C=GB,ST=London,L=London,O=Red Hat,CN=client1"`) {
		t.Errorf("the refused DN is not logged:\n%s", logs)
	}

	f.cfg.TLSAllowedDNList = []string{}
	addr, accepted, logs = f.serve(t)
	expectRefused(t, f, addr, accepted, logs, &f.good, "tls_allowed_dn_list")
}

func TestTLSRevokedClient(t *testing.T) {
	f := newTLSFixture(t)
	leaf, _ := x509.ParseCertificate(f.good.Certificate[0])
	crl, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(1), ThisUpdate: time.Now().Add(-time.Hour), NextUpdate: time.Now().Add(time.Hour),
		RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: leaf.SerialNumber, RevocationTime: time.Now()}},
	}, f.pki.ca, f.pki.caKey)
	if err != nil {
		t.Fatal(err)
	}
	f.cfg.CRLFile = f.pki.write("cacrl.pem", "X509 CRL", crl)
	addr, accepted, logs := f.serve(t)
	expectRefused(t, f, addr, accepted, logs, &f.good, "The certificate has been revoked.")
	// Another client of the same CA is still welcome.
	one := func(a ...pkix.AttributeTypeAndValue) []pkix.AttributeTypeAndValue { return a }
	_, _, other := f.pki.issue("client2", rdn(t, one(atv(oidCN, "client2"))), false, nil)
	expectAccepted(t, f, addr, accepted, &other)
}

func TestTLSNoVerifyCertificate(t *testing.T) {
	f := newTLSFixture(t)
	f.cfg.TLSNoVerifyCertificate = true
	// libvirtd ignores the whole verdict, the DN list included.
	f.cfg.TLSAllowedDNList = []string{"CN=nobody"}
	_, _, foreign := f.other.issue("foreign", f.clientDN, false, nil)
	addr, accepted, logs := f.serve(t)
	expectAccepted(t, f, addr, accepted, &foreign)
	expectAccepted(t, f, addr, accepted, nil)
	if !strings.Contains(logs.String(), "Ignoring bad certificate at user request") {
		t.Errorf("ignored failures not logged:\n%s", logs)
	}
}

func TestNewTLSContextErrors(t *testing.T) {
	f := newTLSFixture(t)
	cfg := *f.cfg
	cfg.CAFile = filepath.Join(f.pki.dir, "missing.pem")
	if _, err := NewTLSContext(&cfg); err == nil || err.Error() != "Cannot read CA certificate '"+cfg.CAFile+"': No such file or directory" {
		t.Errorf("missing CA: %v", err)
	}
	cfg = *f.cfg
	cfg.KeyFile = filepath.Join(f.pki.dir, "missing-key.pem")
	if _, err := NewTLSContext(&cfg); err == nil || !strings.Contains(err.Error(), cfg.KeyFile) {
		t.Errorf("missing key: %v", err)
	}
	// A server certificate that our own CA did not sign.
	cfg = *f.cfg
	cfg.CAFile = f.other.caFile
	if _, err := NewTLSContext(&cfg); err == nil || !strings.Contains(err.Error(), "Our own certificate "+cfg.CertFile+" failed validation against "+cfg.CAFile+": The certificate hasn't got a known issuer.") {
		t.Errorf("foreign server certificate: %v", err)
	}
	cfg = *f.cfg
	cfg.CRLFile = cfg.CertFile
	if _, err := NewTLSContext(&cfg); err == nil || !strings.Contains(err.Error(), "no PEM CRL") {
		t.Errorf("CRL file without a CRL: %v", err)
	}
}
