package qemu

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/compat/migparams"
	"github.com/govirtd/govirtd/driver/qemu/migration"
	"github.com/govirtd/govirtd/rpc/client"
)

// Peer-to-peer migration: the source daemon is itself a libvirt client of
// the destination (go-libvirt), calling Prepare and Finish there and
// running Begin, Perform and Confirm internally — what libvirtd does for
// virsh migrate --p2p.

// peerDialTimeout bounds connecting to the other daemon.
var peerDialTimeout = 10 * time.Second

// dialPeer opens a libvirt connection to uri (qemu+tcp://HOST[:PORT]/system,
// qemu+tls://HOST[:PORT]/system[?pkipath=DIR][&no_verify=1] or
// qemu+unix:///system?socket=PATH; plain qemu:///system means the default
// unix socket).
func dialPeer(ctx context.Context, uri string) (*libvirt.Libvirt, error) {
	conn, err := dialPeerConn(ctx, uri)
	if err != nil {
		return nil, err
	}
	l := libvirt.NewWithDialer(dialers.NewAlreadyConnected(conn))
	if err := l.ConnectToURI(libvirt.QEMUSystem); err != nil {
		conn.Close()
		return nil, relayError(err)
	}
	return l, nil
}

// dialPeerConn connects to the daemon named by uri over its transport
// (tcp, tls or unix), without speaking RPC to it yet. For tls that
// includes the handshake and libvirt's confirmation byte, so what it
// returns is ready for the RPC protocol.
func dialPeerConn(ctx context.Context, uri string) (net.Conn, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return nil, compat.Errorf(libvirt.ErrInvalidArg, compat.FromRemote, "unable to parse URI %s", uri)
	}
	scheme := u.Scheme
	transport := "unix"
	if i := strings.IndexByte(scheme, '+'); i >= 0 {
		transport = scheme[i+1:]
		scheme = scheme[:i]
	} else if u.Host != "" {
		transport = "tls"
	}
	if scheme != "qemu" {
		return nil, compat.Errorf(libvirt.ErrInvalidArg, compat.FromRemote, "unsupported destination URI %s: only qemu URIs are", uri)
	}
	var network, addr string
	switch transport {
	case "tcp", "tls":
		network = "tcp"
		addr = u.Host
		if u.Port() == "" {
			port := "16509"
			if transport == "tls" {
				port = "16514"
			}
			addr = net.JoinHostPort(u.Hostname(), port)
		}
	case "unix":
		network = "unix"
		addr = u.Query().Get("socket")
		if addr == "" {
			addr = "/var/run/libvirt/libvirt-sock"
		}
	default:
		return nil, compat.Errorf(libvirt.ErrInvalidArg, compat.FromRemote, "transport '%s' of %s is not supported by govirtd", transport, uri)
	}
	var tlsConf *tls.Config
	if transport == "tls" {
		// Credentials first, as libvirt's remote driver: a missing CA is
		// reported without touching the network.
		if tlsConf, err = peerTLSConfig(u); err != nil {
			return nil, err
		}
	}
	dctx, cancel := context.WithTimeout(ctx, peerDialTimeout)
	defer cancel()
	var nd net.Dialer
	conn, err := nd.DialContext(dctx, network, addr)
	if err != nil {
		return nil, compat.Errorf(libvirt.ErrSystemError, compat.FromRPC, "unable to connect to server at '%s': %v", addr, rootCause(err))
	}
	if tlsConf != nil {
		return peerTLSHandshake(dctx, conn, tlsConf)
	}
	return conn, nil
}

// libvirt's client PKI layout for a daemon running as root (the remote
// driver's system paths; ?pkipath=DIR replaces all of them with files in
// DIR).
const (
	pkiCACert     = "/etc/pki/CA/cacert.pem"
	pkiClientCert = "/etc/pki/libvirt/clientcert.pem"
	pkiClientKey  = "/etc/pki/libvirt/private/clientkey.pem"
)

// peerTLSConfig builds the client side of libvirt's TLS transport from the
// URI's pkipath and no_verify parameters, as the remote driver does:
// the server is checked against the CA and the URI's host name, unless
// no_verify is set; a missing client certificate is not an error here
// (the server decides whether it wants one).
func peerTLSConfig(u *url.URL) (*tls.Config, error) {
	q := u.Query()
	ca, cert, key := pkiCACert, pkiClientCert, pkiClientKey
	if dir := q.Get("pkipath"); dir != "" {
		ca, cert, key = filepath.Join(dir, "cacert.pem"), filepath.Join(dir, "clientcert.pem"), filepath.Join(dir, "clientkey.pem")
	}
	// libvirt reads no_verify with atoi: any non-zero number disables it.
	noVerify := false
	if v := q.Get("no_verify"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, compat.Errorf(libvirt.ErrInvalidArg, compat.FromRemote, "Failed to parse value of URI component no_verify")
		}
		noVerify = n != 0
	}
	readErr := func(what, path string, err error) error {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return compat.Errorf(libvirt.ErrSystemError, compat.FromRPC, "Cannot read %s '%s': %s", what, path, rootCause(err))
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: u.Hostname(), InsecureSkipVerify: noVerify}
	caPEM, err := os.ReadFile(ca)
	if err != nil {
		return nil, readErr("CA certificate", ca, err)
	}
	conf.RootCAs = x509.NewCertPool()
	if !conf.RootCAs.AppendCertsFromPEM(caPEM) {
		return nil, compat.Errorf(libvirt.ErrSystemError, compat.FromRPC, "Unable to import CA certificate %s", ca)
	}
	_, certErr := os.Stat(cert)
	_, keyErr := os.Stat(key)
	switch {
	case certErr != nil && keyErr != nil:
		// No identity: connect without one.
	case certErr != nil:
		return nil, readErr("certificate", cert, certErr)
	case keyErr != nil:
		return nil, readErr("private key", key, keyErr)
	default:
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, compat.Errorf(libvirt.ErrSystemError, compat.FromRPC, "Unable to load client certificate '%s' and key '%s': %v", cert, key, err)
		}
		conf.Certificates = []tls.Certificate{pair}
	}
	return conf, nil
}

// peerTLSHandshake runs the TLS handshake on conn and then waits for the
// server's verdict on our certificate: libvirt's server sends the byte 1
// when it accepts us and closes the connection otherwise
// (virNetClientSetTLSSession).
func peerTLSHandshake(ctx context.Context, conn net.Conn, conf *tls.Config) (net.Conn, error) {
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	tc := tls.Client(conn, conf)
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		var ve *tls.CertificateVerificationError
		if errors.As(err, &ve) {
			e := compat.Errorf(libvirt.ErrAuthFailed, compat.FromRPC, "Failed to verify peer's certificate")
			e.Err = err
			return nil, e
		}
		return nil, compat.Errorf(libvirt.ErrAuthFailed, compat.FromRPC, "TLS handshake failed %v", err)
	}
	var b [1]byte
	_, err := io.ReadFull(tc, b[:])
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF || (err == nil && b[0] != 1):
		// libvirtd refuses by closing the socket. gnutls reports that
		// abrupt close as an I/O error ("Unable to read TLS confirmation:
		// Input/output error"); Go's TLS reads it as a plain EOF and
		// cannot tell it from a clean close, so this says what happened
		// in libvirt's words for that case.
		conn.Close()
		return nil, compat.Errorf(libvirt.ErrRPC, compat.FromRPC, "server verification (of our certificate or IP address) failed")
	case err != nil:
		conn.Close()
		e := compat.Errorf(libvirt.ErrSystemError, compat.FromRPC, "Unable to read TLS confirmation: Input/output error")
		e.Err = err
		return nil, e
	}
	conn.SetDeadline(time.Time{})
	return tc, nil
}

// rootCause strips Go's "dial tcp ...:" prefixes to the system error text
// libvirt prints ("Connection refused").
func rootCause(err error) string {
	var se interface{ Unwrap() error }
	for errors.As(err, &se) {
		next := se.Unwrap()
		if next == nil {
			break
		}
		err = next
	}
	s := err.Error()
	if s != "" {
		s = strings.ToUpper(s[:1]) + s[1:]
	}
	return s
}

// relayError turns a go-libvirt error from the other daemon into ours,
// keeping its code and text: the client sees the destination's error
// verbatim, as with libvirtd.
func relayError(err error) error {
	var le libvirt.Error
	if errors.As(err, &le) {
		return &compat.Error{Code: libvirt.ErrorNumber(le.Code), Domain: compat.FromQEMU, Detail: le.Message, Int1: -1, Verbatim: true}
	}
	var ce *client.Error
	if errors.As(err, &ce) {
		return &compat.Error{Code: libvirt.ErrorNumber(ce.Code), Domain: compat.Domain(ce.Domain), Detail: ce.Message, Int1: -1, Verbatim: true}
	}
	var ours *compat.Error
	if errors.As(err, &ours) {
		return err
	}
	return compat.Errorf(libvirt.ErrRPC, compat.FromRPC, "%v", err)
}

// performPeerToPeer drives a whole migration from the source.
func (d *Driver) performPeerToPeer(ctx context.Context, ref libvirt.Domain, dconnuri string, tp []libvirt.TypedParam, flags uint32) error {
	dom, err := d.get(ref)
	if err != nil {
		return err
	}
	params, err := migparams.Parse(tp)
	if err != nil {
		return err
	}
	if err := migparams.CheckFlags(migparams.Flags(flags)); err != nil {
		return err
	}
	tunnelled := migparams.Flags(flags)&migparams.Tunnelled != 0
	m, err := d.beginMigJob(ctx, dom, migration.Source, flags, params)
	if err != nil {
		return err
	}
	m.job.PeerURI = dconnuri
	// A paused guest stays paused on the destination: the client library
	// adds VIR_MIGRATE_PAUSED for a paused domain in managed migration,
	// and in peer-to-peer the source daemon does (as libvirtd's
	// qemuMigrationSrcPerformPeer2Peer), for every step it drives.
	dom.mu.Lock()
	paused := dom.state == libvirt.DomainPaused
	dom.mu.Unlock()
	if paused {
		flags |= uint32(migparams.Paused)
		m.job.Flags |= uint64(migparams.Paused)
	}
	beginCookie, xml, err := d.begin(dom, m, flags)
	if err != nil {
		d.endMigJob(dom, m)
		return err
	}
	peer, err := dialPeer(ctx, dconnuri)
	if err != nil {
		d.confirm(dom, m, nil, flags, true)
		return err
	}
	defer peer.Disconnect()

	// The destination gets the XML from Begin and the caller's parameters.
	destParams := *params
	destParams.DestXML = xml
	// Change protection is a source-side flag: the client library sends it
	// only to the source, and so does libvirtd in p2p.
	destFlags := uint32((migparams.Flags(flags) &^ migparams.ChangeProtection).DestFlags())
	var prepCookie []byte
	var uriOut libvirt.OptString
	if tunnelled {
		// The data travels on a connection of its own making; it stays
		// open until after Finish: the destination drops an incoming guest
		// whose preparing connection closes.
		tun, err := openTunnel(ctx, dconnuri)
		if err != nil {
			d.confirm(dom, m, nil, flags, true)
			return err
		}
		defer tun.close()
		if prepCookie, err = tun.prepare(ctx, destParams.TypedParams(), beginCookie, destFlags); err != nil {
			d.confirm(dom, m, nil, flags, true)
			return err
		}
		m.tunnel = tun
	} else {
		prepCookie, uriOut, err = peer.DomainMigratePrepare3Params(destParams.TypedParams(), beginCookie, destFlags)
		if err != nil {
			d.confirm(dom, m, nil, flags, true)
			return relayError(err)
		}
	}
	if migparams.Flags(flags)&migparams.Offline != 0 {
		_, finCookie, ferr := peer.DomainMigrateFinish3Params(destParams.TypedParams(), nil, destFlags, 0)
		cerr := d.confirm(dom, m, finCookie, flags, ferr != nil)
		if ferr != nil {
			return relayError(ferr)
		}
		return cerr
	}
	if len(uriOut) == 1 {
		// The destination's choice, or nothing when the caller's URI
		// named a port (libvirt's p2p source takes uri_out likewise).
		destParams.URI = uriOut[0]
		m.params.URI = uriOut[0]
	}
	perfCookie, perr := d.perform(dom, m, prepCookie, flags)
	if perr != nil && m.tunnel != nil {
		m.tunnel.abort(perr)
	}
	// perform ended the source job and restored the guest if it failed.
	return d.finishPeer(peer, dom, m, destParams, destFlags, flags, perfCookie, perr)
}

// finishPeer ends a migration this daemon drives: Finish on the
// destination, cancelled when Perform failed (which settled the source
// already), else Confirm here with Finish's outcome.
func (d *Driver) finishPeer(peer *libvirt.Libvirt, dom *domain, m *migState, destParams migparams.Params, destFlags, flags uint32, perfCookie []byte, perr error) error {
	// Finish finds the incoming domain by name, cancelled or not.
	if destParams.DestName == "" {
		destParams.DestName = dom.name
	}
	if perr != nil {
		peer.DomainMigrateFinish3Params(destParams.TypedParams(), nil, destFlags, 1)
		return perr
	}
	_, finCookie, ferr := peer.DomainMigrateFinish3Params(destParams.TypedParams(), perfCookie, destFlags, 0)
	cerr := d.confirm(dom, m, finCookie, flags, ferr != nil)
	if ferr != nil {
		return relayError(ferr)
	}
	return cerr
}

// resumePeerToPeer drives a post-copy recovery (VIR_MIGRATE_POSTCOPY_RESUME)
// from the source, as libvirtd's peer-to-peer mode does: the five steps of
// a managed recovery, with this daemon as the destination's client. Any
// failure leaves both halves waiting in post-copy failed, for another try;
// the source is never resumed.
func (d *Driver) resumePeerToPeer(ctx context.Context, ref libvirt.Domain, dconnuri string, tp []libvirt.TypedParam, flags uint32) error {
	dom, err := d.get(ref)
	if err != nil {
		return err
	}
	params, err := migparams.Parse(tp)
	if err != nil {
		return err
	}
	if err := migparams.CheckFlags(migparams.Flags(flags)); err != nil {
		return err
	}
	beginCookie, xml, err := d.beginResume(ctx, dom, params, flags)
	if err != nil {
		return err
	}
	m := dom.migJob(migration.Source)
	if m == nil {
		return errNotMigrating(dom.name)
	}
	m.job.PeerURI = dconnuri
	peer, err := dialPeer(ctx, dconnuri)
	if err != nil {
		d.failPostcopy(dom, m)
		return err
	}
	defer peer.Disconnect()
	destParams := *params
	destParams.DestXML = xml
	destFlags := uint32((migparams.Flags(flags) &^ migparams.ChangeProtection).DestFlags())
	prepCookie, uriOut, err := peer.DomainMigratePrepare3Params(destParams.TypedParams(), beginCookie, destFlags)
	if err != nil {
		d.failPostcopy(dom, m)
		return relayError(err)
	}
	if len(uriOut) == 1 {
		// The destination's choice, or nothing when the caller's URI
		// named a port (libvirt's p2p source takes uri_out likewise).
		destParams.URI = uriOut[0]
		m.params.URI = uriOut[0]
	}
	if _, err := d.acceptCookie(dom, prepCookie); err != nil {
		d.failPostcopy(dom, m)
		return err
	}
	// A failed performResume leaves the source in post-copy failed; the
	// destination's Finish (cancelled) does the same there.
	perfCookie, perr := d.performResume(dom, m)
	return d.finishPeer(peer, dom, m, destParams, destFlags, flags, perfCookie, perr)
}

// peerRunsGuest asks the other host whether it runs the guest, when its
// URI is known. Only a definite answer counts: anything else is unknown.
func (d *Driver) peerRunsGuest(ctx context.Context, dom *domain, m *migState) peerAnswer {
	if m.job.PeerURI == "" {
		d.log.Warn("cannot ask the destination whether it runs the guest: its URI is unknown", "domain", dom.name)
		return peerUnknown
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	l, err := dialPeer(ctx, m.job.PeerURI)
	if err != nil {
		d.log.Warn("cannot reach the destination to ask whether it runs the guest", "domain", dom.name, "peer", m.job.PeerURI, "err", err)
		return peerUnknown
	}
	defer l.Disconnect()
	rdom, err := l.DomainLookupByUUID(libvirt.UUID(dom.uuid))
	if err != nil {
		var le libvirt.Error
		if errors.As(err, &le) && le.Code == uint32(libvirt.ErrNoDomain) {
			return peerDoesNotRun
		}
		d.log.Warn("asking the destination about the guest failed", "domain", dom.name, "err", err)
		return peerUnknown
	}
	state, reason, err := l.DomainGetState(rdom, 0)
	if err != nil {
		return peerUnknown
	}
	switch libvirt.DomainState(state) {
	case libvirt.DomainRunning:
		return peerRuns
	case libvirt.DomainShutoff, libvirt.DomainCrashed:
		return peerDoesNotRun
	case libvirt.DomainPaused:
		// Still waiting for an incoming stream that will not be resumed
		// (Finish never came): not running.
		if reason == int32(libvirt.DomainPausedMigration) {
			return peerDoesNotRun
		}
		// Paused by a user (--suspend): the guest lives there.
		return peerRuns
	}
	return peerUnknown
}
