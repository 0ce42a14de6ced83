package server_test

import (
	"encoding/base64"
	"encoding/hex"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/driver/secret"
	"github.com/govirtd/govirtd/server"
	"github.com/govirtd/govirtd/server/config"
)

// startWithSecrets is a server with the real secret driver, both logging
// at debug level, with the call log on, into buf.
func startWithSecrets(t *testing.T, buf *syncBuffer) *testServer {
	t.Helper()
	log := slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := config.Default()
	cfg.UnixSockDir = t.TempDir()
	cfg.StateDir = t.TempDir()
	cfg.KeepaliveInterval = -1
	cfg.LogRPCCalls = true
	sec, err := secret.New(filepath.Join(cfg.StateDir, "secrets"), log)
	if err != nil {
		t.Fatal(err)
	}
	drv := &fakeDriver{}
	srv := server.New(cfg, drv, log, server.WithSecrets(sec))
	if err := srv.Listen(false); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return &testServer{srv: srv, dir: cfg.UnixSockDir, drv: drv}
}

// A secret's value must not reach the daemon's log in any form, not even
// with log_rpc_calls and debug logging, in calls that succeed or fail.
func TestSecretValueNeverLogged(t *testing.T) {
	var buf syncBuffer
	ts := startWithSecrets(t, &buf)
	l := ts.client(t, "libvirt-sock")
	s, err := l.SecretDefineXML("<secret><usage type='ceph'><name>client.admin</name></usage></secret>", 0)
	if err != nil {
		t.Fatal(err)
	}
	value := []byte("Zq7-very-secret-passphrase-9Xk")
	if err := l.SecretSetValue(s, value, 0); err != nil {
		t.Fatal(err)
	}
	got, err := l.SecretGetValue(s, 0)
	if err != nil || string(got) != string(value) {
		t.Fatalf("get value: %q %v", got, err)
	}
	if err := l.SecretSetValue(s, value, 7); err == nil {
		t.Fatal("set value with bad flags succeeded")
	}
	other := s
	other.UUID[0] ^= 0xff
	if err := l.SecretSetValue(other, value, 0); err == nil {
		t.Fatal("set value of an unknown secret succeeded")
	}
	l.Disconnect()
	ts.srv.Close()
	log := buf.String()
	for _, proc := range []string{"proc=SECRET_SET_VALUE", "proc=SECRET_GET_VALUE"} {
		if !strings.Contains(log, proc) {
			t.Fatalf("call log lacks %s:\n%s", proc, log)
		}
	}
	for _, form := range []string{string(value), "very-secret", base64.StdEncoding.EncodeToString(value), hex.EncodeToString(value)} {
		if strings.Contains(log, form) {
			t.Fatalf("log holds the value as %q:\n%s", form, log)
		}
	}
}

// The read-only socket may look secrets up and dump their XML, and nothing
// else: libvirt refuses define, undefine, set-value and get-value there.
func TestSecretReadOnlySocket(t *testing.T) {
	var buf syncBuffer
	ts := startWithSecrets(t, &buf)
	rw := ts.client(t, "libvirt-sock")
	s, err := rw.SecretDefineXML("<secret><usage type='tls'><name>t</name></usage></secret>", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := rw.SecretSetValue(s, []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	ro := ts.client(t, "libvirt-sock-ro")
	if _, err := ro.SecretLookupByUsage(int32(libvirt.SecretUsageTypeTLS), "t"); err != nil {
		t.Errorf("read-only lookup by usage: %v", err)
	}
	if _, err := ro.SecretGetXMLDesc(s, 0); err != nil {
		t.Errorf("read-only dumpxml: %v", err)
	}
	if l, _, err := ro.ConnectListAllSecrets(1, 0); err != nil || len(l) != 1 {
		t.Errorf("read-only list: %v %v", l, err)
	}
	for name, call := range map[string]func() error{
		"virSecretDefineXML": func() error { _, err := ro.SecretDefineXML("<secret/>", 0); return err },
		"virSecretUndefine":  func() error { return ro.SecretUndefine(s) },
		"virSecretSetValue":  func() error { return ro.SecretSetValue(s, []byte("x"), 0) },
		"virSecretGetValue":  func() error { _, err := ro.SecretGetValue(s, 0); return err },
	} {
		err := call()
		want := "operation forbidden: read only access prevents " + name
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s on the read-only socket: %v, want %q", name, err, want)
		}
	}
	if v, err := rw.SecretGetValue(s, 0); err != nil || string(v) != "v" {
		t.Errorf("value after the read-only attempts: %q %v", v, err)
	}
}
