package server

// libvirt's TLS transport (qemu+tls://, port 16514), as libvirtd serves it:
//
//   - The server asks for a client certificate but does not let the TLS
//     library judge it (gnutls GNUTLS_CERT_REQUEST): the handshake completes
//     whatever the client sent, and the certificate is checked afterwards
//     (virNetTLSContextCheckCertificate): chain to the CA, revocation,
//     basic constraints, key usage and purpose, and the subject DN against
//     tls_allowed_dn_list.
//   - If the checks pass, the server sends one byte, 1, in a TLS record of
//     its own (virNetServerClientCheckAccess); only then does the RPC
//     protocol start. If they fail, the socket is simply closed, and the
//     client, which waits for that byte after its own handshake
//     (virNetClientSetTLSSession), reports "Unable to read TLS
//     confirmation" or "server verification (of our certificate or IP
//     address) failed". A refused client therefore never reaches the RPC
//     layer.
//   - With tls_no_verify_certificate = 1 the checks still run, and their
//     failure is logged and ignored, including the DN list: libvirtd skips
//     all of virNetTLSContextValidCertificate's verdict then.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/server/config"
)

// tlsHandshakeTimeout bounds a client's TLS handshake and certificate
// check: a client that connects and says nothing must not hold a slot.
var tlsHandshakeTimeout = 30 * time.Second

// tlsConfirmOK is the byte libvirt's server sends after accepting a client
// certificate (virNetServerClientCheckAccess).
const tlsConfirmOK = 1

// TLSContext holds the TLS listener's credentials and client policy.
type TLSContext struct {
	conf *tls.Config
	// roots are the CA certificates from ca_file; clients must chain to one.
	roots *x509.CertPool
	crls  []*x509.RevocationList
	// noVerify is tls_no_verify_certificate: check, log, accept anyway.
	noVerify bool
	// allowedDN is tls_allowed_dn_list; nil means any DN, an empty (set)
	// list means none, as in libvirtd.
	allowedDN []string
}

// NewTLSContext loads the TLS credentials named by cfg (libvirt's PKI
// layout unless ca_file, cert_file, key_file or crl_file say otherwise)
// and checks the server's own certificate against the CA, as libvirtd
// does at start-up, so that a broken setup is refused then rather than
// at every client.
func NewTLSContext(cfg *config.Config) (*TLSContext, error) {
	caFile, crlFile, certFile, keyFile := cfg.TLSFiles()
	cas, err := loadCerts(caFile, "CA certificate")
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	for _, c := range cas {
		roots.AddCert(c)
	}
	var crls []*x509.RevocationList
	if crlFile != "" {
		if crls, err = loadCRLs(crlFile, cas); err != nil {
			return nil, err
		}
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, compat.Errorf(libvirt.ErrSystemError, compat.FromRPC, "Unable to load server certificate '%s' and key '%s': %v", certFile, keyFile, err)
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, compat.Errorf(libvirt.ErrSystemError, compat.FromRPC, "Unable to import server certificate %s: %v", certFile, err)
		}
	}
	inter := x509.NewCertPool()
	for _, der := range pair.Certificate[1:] {
		if c, err := x509.ParseCertificate(der); err == nil {
			inter.AddCert(c)
		}
	}
	// virNetTLSContextCheckCertPair: our own certificate must verify
	// against our CA, or no client configured like us could accept it.
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, compat.Errorf(libvirt.ErrSystemError, compat.FromRPC, "Our own certificate %s failed validation against %s: %s", certFile, caFile, verifyReason(err))
	}
	t := &TLSContext{roots: roots, crls: crls, noVerify: cfg.TLSNoVerifyCertificate, allowedDN: cfg.TLSAllowedDNList}
	t.conf = &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{pair},
		// Ask for a certificate without judging it in the handshake: the
		// check comes after it, as in libvirtd, so that a refused client
		// sees the handshake succeed and then the connection close
		// without the confirmation byte. ClientCAs stays unset: with CA
		// names in the TLS 1.3 certificate request, virsh 9.0's gnutls
		// sent no certificate at all (seen here), and the names would
		// only help clients holding several certificates.
		ClientAuth: tls.RequestClientCert,
		// libvirt clients never resume sessions.
		SessionTicketsDisabled: true,
	}
	return t, nil
}

// loadCerts reads every certificate in a PEM file.
func loadCerts(path, what string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, compat.Errorf(libvirt.ErrSystemError, compat.FromRPC, "Cannot read %s '%s': %s", what, path, sysText(err))
	}
	var out []*x509.Certificate
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, compat.Errorf(libvirt.ErrSystemError, compat.FromRPC, "Unable to import %s %s: %v", what, path, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, compat.Errorf(libvirt.ErrSystemError, compat.FromRPC, "Unable to import %s %s: no PEM certificate in it", what, path)
	}
	return out, nil
}

// loadCRLs reads every CRL in a PEM file; each must be signed by one of
// the CAs, or it could not be trusted to revoke anything.
func loadCRLs(path string, cas []*x509.Certificate) ([]*x509.RevocationList, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, compat.Errorf(libvirt.ErrSystemError, compat.FromRPC, "Cannot read CA revocation list '%s': %s", path, sysText(err))
	}
	var out []*x509.RevocationList
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "X509 CRL" {
			continue
		}
		crl, err := x509.ParseRevocationList(b.Bytes)
		if err != nil {
			return nil, compat.Errorf(libvirt.ErrSystemError, compat.FromRPC, "Unable to import CA revocation list %s: %v", path, err)
		}
		signed := false
		for _, ca := range cas {
			if crl.CheckSignatureFrom(ca) == nil {
				signed = true
				break
			}
		}
		if !signed {
			return nil, compat.Errorf(libvirt.ErrSystemError, compat.FromRPC, "Unable to import CA revocation list %s: it is not signed by a CA of the CA certificate file", path)
		}
		out = append(out, crl)
	}
	if len(out) == 0 {
		return nil, compat.Errorf(libvirt.ErrSystemError, compat.FromRPC, "Unable to import CA revocation list %s: no PEM CRL in it", path)
	}
	return out, nil
}

// sysText is the strerror-like text of a file error ("No such file or
// directory"), which libvirt prints after the file name.
func sysText(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	s := err.Error()
	if s != "" {
		s = strings.ToUpper(s[:1]) + s[1:]
	}
	return s
}

// verifyReason words a chain verification failure as libvirt does
// (virNetTLSContextValidCertificate's reasons from the gnutls status).
func verifyReason(err error) string {
	var ua x509.UnknownAuthorityError
	var ci x509.CertificateInvalidError
	var ia x509.InsecureAlgorithmError
	switch {
	case errors.As(err, &ua):
		return "The certificate hasn't got a known issuer."
	case errors.As(err, &ia):
		return "The certificate uses an insecure algorithm"
	case errors.As(err, &ci) && ci.Reason == x509.Expired:
		return "The certificate is not trusted. (" + ci.Error() + ")"
	}
	return "The certificate is not trusted."
}

// checkClient runs libvirt's checks on the client's certificate and
// returns the client's DN in libvirt's form ("" when it has none).
func (t *TLSContext) checkClient(st tls.ConnectionState) (string, error) {
	fail := func(format string, args ...any) error {
		return compat.Errorf(libvirt.ErrSystemError, compat.FromRPC, format, args...)
	}
	if len(st.PeerCertificates) == 0 {
		// gnutls_certificate_verify_peers2 fails with
		// GNUTLS_E_NO_CERTIFICATE_FOUND.
		return "", fail("Unable to verify TLS peer: No certificate was found.")
	}
	leaf := st.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range st.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	// Key purposes are judged below the way libvirt does, not by Go's
	// stricter rule (any EKU without clientAuth fails).
	chains, err := leaf.Verify(x509.VerifyOptions{Roots: t.roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		return "", fail("Certificate failed validation: %s", verifyReason(err))
	}
	if t.revoked(chains[0]) {
		return "", fail("Certificate failed validation: The certificate has been revoked.")
	}
	dn, err := LibvirtDN(leaf.RawSubject)
	if err != nil {
		return "", fail("Failed to get certificate [session] distinguished name: %v", err)
	}
	if t.allowedDN != nil && !dnAllowed(dn, t.allowedDN) {
		return dn, fail("Client's Distinguished Name is not on the list of allowed clients (tls_allowed_dn_list).  Use 'certtool -i --infile clientcert.pem' to view the Distinguished Name field in the client certificate, or run this daemon with --verbose option.")
	}
	if leaf.BasicConstraintsValid && leaf.IsCA {
		return dn, fail("The certificate [session] basic constraints show a CA, but we need one for a client")
	}
	if err := checkKeyUsage(leaf); err != nil {
		return dn, err
	}
	return dn, nil
}

// revoked reports whether a CRL lists a certificate of the chain (the
// root excepted: a CA cannot revoke itself).
func (t *TLSContext) revoked(chain []*x509.Certificate) bool {
	for _, c := range chain[:max(len(chain)-1, 1)] {
		for _, crl := range t.crls {
			if string(crl.RawIssuer) != string(c.RawIssuer) {
				continue
			}
			for _, e := range crl.RevokedCertificateEntries {
				if e.SerialNumber.Cmp(c.SerialNumber) == 0 {
					return true
				}
			}
		}
	}
	return false
}

var (
	oidKeyUsage    = asn1.ObjectIdentifier{2, 5, 29, 15}
	oidExtKeyUsage = asn1.ObjectIdentifier{2, 5, 29, 37}
)

// checkKeyUsage is libvirt's key usage and purpose check of a client
// certificate (virNetTLSCertCheckKeyUsage, virNetTLSCertCheckKeyPurpose):
// a missing permission only refuses the certificate when the extension
// is critical.
func checkKeyUsage(c *x509.Certificate) error {
	critical := func(oid asn1.ObjectIdentifier) (present, crit bool) {
		for _, e := range c.Extensions {
			if e.Id.Equal(oid) {
				return true, e.Critical
			}
		}
		return false, false
	}
	if present, crit := critical(oidKeyUsage); present && crit {
		if c.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
			return compat.Errorf(libvirt.ErrSystemError, compat.FromRPC, "Certificate [session] usage does not permit digital signature")
		}
		if c.KeyUsage&x509.KeyUsageKeyEncipherment == 0 {
			return compat.Errorf(libvirt.ErrSystemError, compat.FromRPC, "Certificate [session] usage does not permit key encipherment")
		}
	}
	if present, crit := critical(oidExtKeyUsage); present && crit {
		allowClient := false
		for _, u := range c.ExtKeyUsage {
			// libvirt: clientAuth allows a client, serverAuth a server,
			// "any" neither, and any other purpose both.
			if u != x509.ExtKeyUsageServerAuth && u != x509.ExtKeyUsageAny {
				allowClient = true
			}
		}
		if len(c.UnknownExtKeyUsage) > 0 {
			allowClient = true
		}
		if !allowClient {
			return compat.Errorf(libvirt.ErrSystemError, compat.FromRPC, "Certificate [session] purpose does not allow use with a TLS client")
		}
	}
	return nil
}

// ServerHandshake runs the TLS handshake on a freshly accepted
// connection, checks the client's certificate and sends the confirmation
// byte. On refusal it closes raw without a word, as libvirtd does, and
// returns why; log gets the outcome either way.
func (t *TLSContext) ServerHandshake(ctx context.Context, raw net.Conn, log *slog.Logger) (net.Conn, error) {
	log = log.With("peer", peerName(raw))
	raw.SetDeadline(time.Now().Add(tlsHandshakeTimeout))
	tc := tls.Server(raw, t.conf)
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		log.Warn("TLS handshake failed", "err", err)
		return nil, compat.Errorf(libvirt.ErrAuthFailed, compat.FromRPC, "TLS handshake failed: %v", err)
	}
	dn, err := t.checkClient(tc.ConnectionState())
	if err != nil {
		if !t.noVerify {
			// Abruptly, without close_notify: the client's read of the
			// confirmation fails, which is what libvirt clients expect.
			raw.Close()
			log.Warn("refusing TLS client: Failed to verify peer's certificate", "reason", err.Error(), "dn", dn)
			return nil, compat.Errorf(libvirt.ErrAuthFailed, compat.FromRPC, "Failed to verify peer's certificate: %s", err)
		}
		log.Info("Ignoring bad certificate at user request (tls_no_verify_certificate)", "reason", err.Error(), "dn", dn)
	}
	if _, err := tc.Write([]byte{tlsConfirmOK}); err != nil {
		raw.Close()
		log.Info("TLS client went away before its confirmation", "err", err)
		return nil, err
	}
	raw.SetDeadline(time.Time{})
	log.Info("TLS client accepted", "dn", dn, "version", tls.VersionName(tc.ConnectionState().Version))
	return tc, nil
}

// tlsListener turns accepted TCP connections into checked TLS ones. The
// handshakes run concurrently, off the accept loop, so one slow client
// does not hold up others; Accept returns only accepted clients.
type tlsListener struct {
	net.Listener
	tls *TLSContext
	log *slog.Logger
	// pending bounds handshakes in progress: a client whose certificate
	// has not been checked yet is libvirt's "anonymous" client, limited by
	// max_anonymous_clients, so a flood of stalled handshakes cannot keep
	// authenticated clients out.
	pending chan struct{}

	ready chan net.Conn
	done  chan struct{}

	mu       sync.Mutex
	inflight map[net.Conn]struct{}
	once     sync.Once
	ctx      context.Context
	cancel   context.CancelFunc
}

func newTLSListener(l net.Listener, t *TLSContext, maxPending int, log *slog.Logger) *tlsListener {
	ctx, cancel := context.WithCancel(context.Background())
	tl := &tlsListener{
		Listener: l, tls: t, log: log,
		pending:  make(chan struct{}, max(maxPending, 1)),
		ready:    make(chan net.Conn),
		done:     make(chan struct{}),
		inflight: map[net.Conn]struct{}{},
		ctx:      ctx, cancel: cancel,
	}
	go tl.acceptLoop()
	return tl
}

func (l *tlsListener) acceptLoop() {
	for {
		raw, err := l.Listener.Accept()
		if err != nil {
			select {
			case <-l.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				l.Close()
				return
			}
			l.log.Warn("accept failed", "listener", "tls", "err", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		select {
		case l.pending <- struct{}{}:
		default:
			l.log.Warn("too many clients in TLS handshake, dropping connection", "peer", peerName(raw))
			raw.Close()
			continue
		}
		l.mu.Lock()
		l.inflight[raw] = struct{}{}
		l.mu.Unlock()
		go l.handshake(raw)
	}
}

func (l *tlsListener) handshake(raw net.Conn) {
	defer func() {
		l.mu.Lock()
		delete(l.inflight, raw)
		l.mu.Unlock()
		<-l.pending
	}()
	c, err := l.tls.ServerHandshake(l.ctx, raw, l.log.With("listener", "tls"))
	if err != nil {
		return
	}
	select {
	case l.ready <- c:
	case <-l.done:
		c.Close()
	}
}

// Accept returns the next client that passed the certificate check.
func (l *tlsListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops listening and drops clients still in their handshake.
func (l *tlsListener) Close() error {
	var err error
	l.once.Do(func() {
		close(l.done)
		l.cancel()
		err = l.Listener.Close()
		l.mu.Lock()
		for c := range l.inflight {
			c.Close()
		}
		l.mu.Unlock()
	})
	return err
}

// LibvirtDN formats a certificate's subject (its DER RDNSequence, e.g.
// x509.Certificate.RawSubject) the way libvirt sees it: gnutls's
// gnutls_x509_crt_get_dn, which tls_allowed_dn_list patterns are matched
// against. That is RFC 4514 syntax in the certificate's own RDN order
// (gnutls's GNUTLS_X509_DN_FLAG_COMPAT, not reversed as RFC 4514 and Go's
// pkix.Name.String() do): "C=GB,ST=London,L=London,O=Red Hat,CN=client".
// Multi-valued RDNs join with '+'; attribute names are gnutls's (C, ST, L,
// O, OU, CN, DC, UID, EMAIL, ...), unknown types print as the dotted OID
// with the value's DER in hex ("1.2.3=#0c0161").
func LibvirtDN(rawSubject []byte) (string, error) {
	var seq []relativeDNSET
	rest, err := asn1.Unmarshal(rawSubject, &seq)
	if err != nil {
		return "", fmt.Errorf("malformed distinguished name: %v", err)
	}
	if len(rest) != 0 {
		return "", errors.New("malformed distinguished name: trailing data")
	}
	if len(seq) == 0 {
		// gnutls: GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE.
		return "", errors.New("The requested data were not available.")
	}
	var b strings.Builder
	for i, rdn := range seq {
		if i > 0 {
			b.WriteByte(',')
		}
		for j, atv := range rdn {
			if j > 0 {
				b.WriteByte('+')
			}
			name, value := dnAttribute(atv)
			b.WriteString(name)
			b.WriteByte('=')
			b.WriteString(value)
		}
	}
	return b.String(), nil
}

type relativeDNSET []typeAndValue

type typeAndValue struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue
}

// String kinds of DN attributes (gnutls's _oid2str etypes).
type dnKind int

const (
	dnDirectoryString dnKind = iota // CHOICE of teletex, printable, universal, UTF-8, BMP
	dnPrintable
	dnIA5
	dnUTF8
	dnNumeric
)

type dnAttr struct {
	name string
	kind dnKind
}

// dnAttrs are the attribute types gnutls names (lib/x509/common.c), with
// the string type it expects of each.
var dnAttrs = map[string]dnAttr{
	"1.3.6.1.5.5.7.9.2":          {"placeOfBirth", dnDirectoryString},
	"1.3.6.1.5.5.7.9.3":          {"gender", dnPrintable},
	"1.3.6.1.5.5.7.9.4":          {"countryOfCitizenship", dnPrintable},
	"1.3.6.1.5.5.7.9.5":          {"countryOfResidence", dnPrintable},
	"2.5.4.6":                    {"C", dnPrintable},
	"2.5.4.9":                    {"street", dnDirectoryString},
	"2.5.4.12":                   {"title", dnDirectoryString},
	"2.5.4.10":                   {"O", dnDirectoryString},
	"2.5.4.11":                   {"OU", dnDirectoryString},
	"2.5.4.3":                    {"CN", dnDirectoryString},
	"2.5.4.7":                    {"L", dnDirectoryString},
	"2.5.4.8":                    {"ST", dnDirectoryString},
	"2.5.4.13":                   {"description", dnDirectoryString},
	"2.5.4.5":                    {"serialNumber", dnPrintable},
	"2.5.4.20":                   {"telephoneNumber", dnPrintable},
	"2.5.4.4":                    {"surName", dnDirectoryString},
	"2.5.4.43":                   {"initials", dnDirectoryString},
	"2.5.4.44":                   {"generationQualifier", dnDirectoryString},
	"2.5.4.42":                   {"givenName", dnDirectoryString},
	"2.5.4.65":                   {"pseudonym", dnDirectoryString},
	"2.5.4.46":                   {"dnQualifier", dnPrintable},
	"2.5.4.17":                   {"postalCode", dnDirectoryString},
	"2.5.4.41":                   {"name", dnDirectoryString},
	"2.5.4.15":                   {"businessCategory", dnDirectoryString},
	"0.9.2342.19200300.100.1.25": {"DC", dnIA5},
	"0.9.2342.19200300.100.1.1":  {"UID", dnDirectoryString},
	"1.2.840.113556.1.4.656":     {"userPrincipalName", dnDirectoryString},
	"1.3.6.1.4.1.311.60.2.1.1":   {"jurisdictionOfIncorporationLocalityName", dnDirectoryString},
	"1.3.6.1.4.1.311.60.2.1.2":   {"jurisdictionOfIncorporationStateOrProvinceName", dnDirectoryString},
	"1.3.6.1.4.1.311.60.2.1.3":   {"jurisdictionOfIncorporationCountryName", dnPrintable},
	"1.2.840.113549.1.9.1":       {"EMAIL", dnIA5},
	"1.3.6.1.5.5.7.8.5":          {"XmppAddr", dnUTF8},
	"1.2.643.100.1":              {"OGRN", dnNumeric},
	"1.2.643.100.3":              {"SNILS", dnNumeric},
	"1.2.643.100.5":              {"OGRNIP", dnNumeric},
	"1.2.643.3.131.1.1":          {"INN", dnNumeric},
}

// ASN.1 universal string tags.
const (
	tagUTF8      = 12
	tagNumeric   = 18
	tagPrintable = 19
	tagTeletex   = 20
	tagIA5       = 22
	tagUniversal = 28
	tagBMP       = 30
)

// dnAttribute returns one attribute's name and its value as gnutls prints
// it: the decoded string, escaped; or '#' and the hex of the value's DER
// when the type is unknown or the value is not the string expected.
func dnAttribute(atv typeAndValue) (string, string) {
	oid := atv.Type.String()
	hexDER := "#" + hex.EncodeToString(atv.Value.FullBytes)
	a, known := dnAttrs[oid]
	if !known {
		return oid, hexDER
	}
	v := atv.Value
	if v.Class != asn1.ClassUniversal || v.IsCompound {
		return a.name, hexDER
	}
	var s string
	switch a.kind {
	case dnDirectoryString:
		switch v.Tag {
		case tagUTF8, tagPrintable:
			s = string(v.Bytes)
		case tagTeletex:
			// gnutls takes a teletex string as is when it is plain
			// printable ASCII, else prints its bytes in hex.
			s = string(v.Bytes)
			if !printableASCII(v.Bytes) {
				s = "#" + hex.EncodeToString(v.Bytes)
			}
		case tagBMP:
			var ok bool
			if s, ok = decodeBMP(v.Bytes); !ok {
				s = "#" + hex.EncodeToString(v.Bytes)
			}
		case tagUniversal:
			s = "#" + hex.EncodeToString(v.Bytes)
		default:
			return a.name, hexDER
		}
	case dnPrintable, dnIA5, dnUTF8, dnNumeric:
		want := map[dnKind]int{dnPrintable: tagPrintable, dnIA5: tagIA5, dnUTF8: tagUTF8, dnNumeric: tagNumeric}[a.kind]
		if v.Tag != want {
			return a.name, hexDER
		}
		s = string(v.Bytes)
	}
	if strings.IndexByte(s, 0) >= 0 {
		// gnutls refuses embedded NULs and falls back to hex.
		return a.name, hexDER
	}
	return a.name, escapeDNValue(s)
}

func printableASCII(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

func decodeBMP(b []byte) (string, bool) {
	if len(b)%2 != 0 {
		return "", false
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
	}
	s := string(utf16.Decode(u))
	return s, utf8.ValidString(s) && !strings.ContainsRune(s, utf8.RuneError)
}

// escapeDNValue escapes as gnutls's str_escape: a backslash before
// , + " \ < > ; anywhere, before '#' or ' ' first, and before a final ' '.
func escapeDNValue(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case strings.IndexByte(",+\"\\<>;", c) >= 0,
			i == 0 && (c == '#' || c == ' '),
			i == len(s)-1 && c == ' ':
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	return b.String()
}

// dnAllowed matches dn against tls_allowed_dn_list as libvirt does:
// fnmatch(pattern, dn, 0) for each pattern.
func dnAllowed(dn string, patterns []string) bool {
	for _, p := range patterns {
		if fnmatch(p, dn) {
			return true
		}
	}
	return false
}

// fnmatch is POSIX fnmatch with no flags: '*' and '?' match any
// characters, '/' and a leading '.' included; [...] bracket expressions
// with '!' or '^' negation, ranges and [:class:]; a backslash quotes the
// next character. An unclosed '[' is an ordinary character, as in glibc.
func fnmatch(pattern, name string) bool {
	return matchRunes([]rune(pattern), []rune(name))
}

func matchRunes(p, s []rune) bool {
	for len(p) > 0 {
		switch p[0] {
		case '*':
			for len(p) > 0 && p[0] == '*' {
				p = p[1:]
			}
			if len(p) == 0 {
				return true
			}
			for i := 0; i <= len(s); i++ {
				if matchRunes(p, s[i:]) {
					return true
				}
			}
			return false
		case '?':
			if len(s) == 0 {
				return false
			}
			p, s = p[1:], s[1:]
		case '[':
			if len(s) == 0 {
				return false
			}
			ok, n := matchBracket(p, s[0])
			if n == 0 {
				// Not a bracket expression: a literal '['.
				if s[0] != '[' {
					return false
				}
				p, s = p[1:], s[1:]
				continue
			}
			if !ok {
				return false
			}
			p, s = p[n:], s[1:]
		case '\\':
			if len(p) == 1 {
				// glibc: a trailing backslash matches nothing.
				return false
			}
			if len(s) == 0 || s[0] != p[1] {
				return false
			}
			p, s = p[2:], s[1:]
		default:
			if len(s) == 0 || s[0] != p[0] {
				return false
			}
			p, s = p[1:], s[1:]
		}
	}
	return len(s) == 0
}

// bracketClasses are the [:name:] classes of POSIX bracket expressions.
var bracketClasses = map[string]func(rune) bool{
	"alnum":  func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) },
	"alpha":  unicode.IsLetter,
	"blank":  func(r rune) bool { return r == ' ' || r == '\t' },
	"cntrl":  unicode.IsControl,
	"digit":  func(r rune) bool { return r >= '0' && r <= '9' },
	"graph":  func(r rune) bool { return unicode.IsGraphic(r) && !unicode.IsSpace(r) },
	"lower":  unicode.IsLower,
	"print":  unicode.IsPrint,
	"punct":  unicode.IsPunct,
	"space":  unicode.IsSpace,
	"upper":  unicode.IsUpper,
	"xdigit": func(r rune) bool { return strings.ContainsRune("0123456789abcdefABCDEF", r) },
}

// matchBracket matches c against the bracket expression at the start of p
// and returns how many runes of p it spans, 0 if p does not start a
// complete bracket expression.
func matchBracket(p []rune, c rune) (bool, int) {
	i := 1
	negate := false
	if i < len(p) && (p[i] == '!' || p[i] == '^') {
		negate = true
		i++
	}
	matched := false
	first := true
	for {
		if i >= len(p) {
			return false, 0
		}
		if p[i] == ']' && !first {
			i++
			break
		}
		first = false
		if p[i] == '[' && i+1 < len(p) && p[i+1] == ':' {
			end := -1
			for j := i + 2; j+1 < len(p); j++ {
				if p[j] == ':' && p[j+1] == ']' {
					end = j
					break
				}
			}
			if end >= 0 {
				if f, ok := bracketClasses[string(p[i+2:end])]; ok {
					if f(c) {
						matched = true
					}
					i = end + 2
					continue
				}
			}
		}
		lo := p[i]
		if lo == '\\' && i+1 < len(p) {
			i++
			lo = p[i]
		}
		i++
		hi := lo
		if i+1 < len(p) && p[i] == '-' && p[i+1] != ']' {
			hi = p[i+1]
			if hi == '\\' && i+2 < len(p) {
				hi = p[i+2]
				i++
			}
			i += 2
		}
		if lo <= c && c <= hi {
			matched = true
		}
	}
	return matched != negate, i
}
