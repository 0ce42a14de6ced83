package compat_test

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/govirtd/govirtd/test/deps"
)

const (
	persistentSecretUUID = "6f1c2e4a-8b3d-4c5e-9f60-7a8b9c0d1e2f"
	ephemeralSecretUUID  = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
	privateSecretUUID    = "11111111-2222-4333-8444-555555555555"
)

// TestSecretVirsh: the secret commands of virsh against govirtd, as
// against libvirtd 9.0: define from a file, set-value with --base64 and
// with --file, get-value, list, dumpxml; a private secret refuses
// get-value; the read-only socket refuses changes and values; after a
// daemon restart the persistent secret is there with its value and the
// ephemeral one is gone; and no value ever reaches the daemon's log.
func TestSecretVirsh(t *testing.T) {
	deps.Require(t, "virsh")
	t.Parallel()
	h := StartHost(t, HostOptions{})
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	persistent := write("persistent.xml", `<secret ephemeral='no' private='no'>
  <uuid>`+persistentSecretUUID+`</uuid>
  <description>disk passphrase</description>
  <usage type='volume'>
    <volume>/var/lib/images/disk.qcow2</volume>
  </usage>
</secret>
`)
	ephemeral := write("ephemeral.xml", `<secret ephemeral='yes'><uuid>`+ephemeralSecretUUID+`</uuid><usage type='ceph'><name>client.admin secret</name></usage></secret>`)
	private := write("private.xml", `<secret private='yes'><uuid>`+privateSecretUUID+`</uuid><usage type='iscsi'><target>iqn.2026-12.org.example:t1</target></usage></secret>`)

	// (virsh -q, as the harness runs it, keeps "Secret ... created" and
	// "Secret value set" to itself: the list and values below show them.)
	for _, file := range []string{persistent, ephemeral, private} {
		MustVirsh(t, h.URI(), "secret-define", file)
	}

	// --base64 on the command line (virsh warns that it is insecure, and
	// does it).
	persistentValue := []byte("correct horse battery staple")
	b64 := base64.StdEncoding.EncodeToString(persistentValue)
	MustVirsh(t, h.URI(), "secret-set-value", persistentSecretUUID, "--base64", b64)
	// --file --plain: the file's bytes are the value.
	ephemeralValue := "ephemeral\x00value\n"
	MustVirsh(t, h.URI(), "secret-set-value", ephemeralSecretUUID, "--file", write("ephemeral.val", ephemeralValue), "--plain")
	// --file alone: the file holds the value in base64.
	privateValue := "private value"
	MustVirsh(t, h.URI(), "secret-set-value", privateSecretUUID, "--file", write("private.b64", base64.StdEncoding.EncodeToString([]byte(privateValue))))

	if got := strings.TrimSpace(MustVirsh(t, h.URI(), "secret-get-value", persistentSecretUUID)); got != b64 {
		t.Errorf("get-value of the persistent secret: %q, want %q", got, b64)
	}
	if got := strings.TrimSpace(MustVirsh(t, h.URI(), "secret-get-value", ephemeralSecretUUID)); got != base64.StdEncoding.EncodeToString([]byte(ephemeralValue)) {
		t.Errorf("get-value of the ephemeral secret: %q", got)
	}
	r := Virsh(t, h.URI(), "secret-get-value", privateSecretUUID)
	if r.Err == nil || !strings.Contains(r.Stderr, "error: Invalid secret: secret is private") {
		t.Errorf("get-value of a private secret: %s", r)
	}

	list := MustVirsh(t, h.URI(), "secret-list")
	for _, want := range []string{
		persistentSecretUUID + "   volume /var/lib/images/disk.qcow2",
		ephemeralSecretUUID + "   ceph client.admin secret",
		privateSecretUUID + "   iscsi iqn.2026-12.org.example:t1",
	} {
		if !strings.Contains(list, want) {
			t.Errorf("secret-list lacks %q:\n%s", want, list)
		}
	}
	if l := lines(MustVirsh(t, h.URI(), "secret-list", "--ephemeral")); len(l) != 1 || !strings.HasPrefix(l[0], ephemeralSecretUUID) {
		t.Errorf("secret-list --ephemeral: %q", l)
	}
	if l := lines(MustVirsh(t, h.URI(), "secret-list", "--private")); len(l) != 1 || !strings.HasPrefix(l[0], privateSecretUUID) {
		t.Errorf("secret-list --private: %q", l)
	}
	if l := lines(MustVirsh(t, h.URI(), "secret-list", "--no-ephemeral", "--no-private")); len(l) != 1 || !strings.HasPrefix(l[0], persistentSecretUUID) {
		t.Errorf("secret-list --no-ephemeral --no-private: %q", l)
	}
	if got, want := MustVirsh(t, h.URI(), "secret-dumpxml", persistentSecretUUID), `<secret ephemeral='no' private='no'>
  <uuid>`+persistentSecretUUID+`</uuid>
  <description>disk passphrase</description>
  <usage type='volume'>
    <volume>/var/lib/images/disk.qcow2</volume>
  </usage>
</secret>
`; strings.TrimSpace(got) != strings.TrimSpace(want) {
		t.Errorf("secret-dumpxml:\n%s\nwant:\n%s", got, want)
	}

	// libvirt's refusals, word for word.
	r = Virsh(t, h.URI(), "secret-define", write("dup.xml", `<secret><usage type='volume'><volume>/var/lib/images/disk.qcow2</volume></usage></secret>`))
	if r.Err == nil || !strings.Contains(r.Stderr, "error: internal error: a secret with UUID "+persistentSecretUUID+" already defined for use with /var/lib/images/disk.qcow2") {
		t.Errorf("a second secret with the same usage: %s", r)
	}
	r = Virsh(t, h.URI(), "secret-dumpxml", "99999999-2222-4333-8444-555555555555")
	if r.Err == nil || !strings.Contains(r.Stderr, "error: Secret not found: no secret with matching uuid '99999999-2222-4333-8444-555555555555'") {
		t.Errorf("dumpxml of an unknown secret: %s", r)
	}

	// The read-only socket: lists and XML yes, changes and values no.
	ro := h.ROURI()
	if !strings.Contains(MustVirsh(t, ro, "secret-list"), persistentSecretUUID) {
		t.Error("secret-list on the read-only socket lacks the secret")
	}
	MustVirsh(t, ro, "secret-dumpxml", persistentSecretUUID)
	for api, args := range map[string][]string{
		"virSecretDefineXML": {"secret-define", persistent},
		"virSecretUndefine":  {"secret-undefine", persistentSecretUUID},
		"virSecretSetValue":  {"secret-set-value", persistentSecretUUID, "--file", write("ro.val", "x"), "--plain"},
		"virSecretGetValue":  {"secret-get-value", persistentSecretUUID},
	} {
		r := Virsh(t, ro, args...)
		if r.Err == nil || !strings.Contains(r.Stderr, "error: operation forbidden: read only access prevents "+api) {
			t.Errorf("%s on the read-only socket: %s", args[0], r)
		}
	}

	// Stored with libvirt's layout and modes, value in base64 only.
	secDir := filepath.Join(h.Dir, "state", "secrets")
	if fi, err := os.Stat(secDir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("%s: %v %v, want mode 0700", secDir, fi, err)
	}
	ents, _ := os.ReadDir(secDir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
		if fi, _ := e.Info(); fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", e.Name(), fi.Mode())
		}
	}
	sort.Strings(names)
	want := []string{privateSecretUUID + ".base64", privateSecretUUID + ".xml", persistentSecretUUID + ".base64", persistentSecretUUID + ".xml"}
	sort.Strings(want)
	if got := strings.Join(names, " "); got != strings.Join(want, " ") {
		t.Errorf("secrets directory holds %q (the ephemeral secret must not be there)", got)
	}

	h.Restart()
	if got := strings.TrimSpace(MustVirsh(t, h.URI(), "secret-get-value", persistentSecretUUID)); got != b64 {
		t.Errorf("after restart, get-value of the persistent secret: %q, want %q", got, b64)
	}
	r = Virsh(t, h.URI(), "secret-dumpxml", ephemeralSecretUUID)
	if r.Err == nil || !strings.Contains(r.Stderr, "no secret with matching uuid '"+ephemeralSecretUUID+"'") {
		t.Errorf("after restart, the ephemeral secret: %s", r)
	}
	r = Virsh(t, h.URI(), "secret-get-value", privateSecretUUID)
	if r.Err == nil || !strings.Contains(r.Stderr, "secret is private") {
		t.Errorf("after restart, get-value of the private secret: %s", r)
	}
	MustVirsh(t, h.URI(), "secret-undefine", persistentSecretUUID)
	if strings.Contains(MustVirsh(t, h.URI(), "secret-list"), persistentSecretUUID) {
		t.Error("secret-list still shows the undefined secret")
	}
	if _, err := os.Stat(filepath.Join(secDir, persistentSecretUUID+".base64")); !os.IsNotExist(err) {
		t.Errorf("undefine left the value file: %v", err)
	}

	// The daemon logs every call (log_rpc_calls = 1) and never a value.
	log := readFile(t, h.LogPath)
	if !strings.Contains(log, "proc=SECRET_SET_VALUE") || !strings.Contains(log, "proc=SECRET_GET_VALUE") {
		t.Errorf("the call log lacks the value calls")
	}
	for _, v := range []string{string(persistentValue), b64, "ephemeral\x00value", base64.StdEncoding.EncodeToString([]byte(ephemeralValue)), privateValue} {
		if strings.Contains(log, v) {
			t.Errorf("the daemon log holds a secret value (%q)", v)
		}
	}
}

// TestSecretPython: python-libvirt's lookupByUsage, the usage a secret
// reports, libvirt's error for an unknown usage, and secret events
// (lifecycle and value-changed) delivered to a registered callback.
func TestSecretPython(t *testing.T) {
	t.Parallel()
	h := StartHost(t, HostOptions{})
	r := Python(t, `
import sys, threading, time, libvirt
libvirt.virEventRegisterDefaultImpl()
uri = sys.argv[1]
c = libvirt.open(uri)
events = []
c.secretEventRegisterAny(None, libvirt.VIR_SECRET_EVENT_ID_LIFECYCLE, lambda conn, s, ev, detail, opaque: events.append(("lifecycle", s.UUIDString(), ev)), None)
c.secretEventRegisterAny(None, libvirt.VIR_SECRET_EVENT_ID_VALUE_CHANGED, lambda conn, s, opaque: events.append(("value", s.UUIDString())), None)
def loop():
    while True:
        libvirt.virEventRunDefaultImpl()
threading.Thread(target=loop, daemon=True).start()

w = libvirt.open(uri)
s = w.secretDefineXML("<secret><usage type='ceph'><name>client.libvirt</name></usage></secret>")
s.setValue(b"key")
u = s.UUIDString()
f = w.secretLookupByUsage(libvirt.VIR_SECRET_USAGE_TYPE_CEPH, "client.libvirt")
assert f.UUIDString() == u, (f.UUIDString(), u)
assert f.usageType() == libvirt.VIR_SECRET_USAGE_TYPE_CEPH and f.usageID() == "client.libvirt"
assert f.value() == b"key"
try:
    w.secretLookupByUsage(libvirt.VIR_SECRET_USAGE_TYPE_VOLUME, "client.libvirt")
    raise SystemExit("lookup of a usage of another type found a secret")
except libvirt.libvirtError as e:
    assert e.get_error_code() == libvirt.VIR_ERR_NO_SECRET and e.get_error_domain() == libvirt.VIR_FROM_SECRET, (e.get_error_code(), e.get_error_domain())
    assert str(e) == "Secret not found: no secret with matching usage 'client.libvirt'", str(e)
s.undefine()
want = [("lifecycle", u, libvirt.VIR_SECRET_EVENT_DEFINED), ("value", u), ("lifecycle", u, libvirt.VIR_SECRET_EVENT_UNDEFINED)]
deadline = time.time() + 10
while events != want and time.time() < deadline:
    time.sleep(0.05)
assert events == want, events
print("ok")
`, h.URI())
	if r.Err != nil || strings.TrimSpace(r.Stdout) != "ok" {
		t.Fatalf("python: %s", r)
	}
}
