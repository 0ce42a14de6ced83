package secret

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver"
)

var ctx = context.Background()

func newDriver(t *testing.T, dir string) *Driver {
	t.Helper()
	d, err := New(dir, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func mustUUID(t *testing.T, s string) libvirt.UUID {
	t.Helper()
	u, err := compat.ParseUUID(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// wantErr checks a libvirt error's code and whole message.
func wantErr(t *testing.T, err error, code libvirt.ErrorNumber, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %q", msg)
	}
	le := compat.As(err)
	if le.Code != code || le.Message() != msg {
		t.Fatalf("error %d %q, want %d %q", le.Code, le.Message(), code, msg)
	}
}

const (
	volUUID = "64e771b9-9599-40b1-befe-d03239f1c22c"
	volXML  = `<secret ephemeral='no' private='no'>
  <description>test vol</description>
  <uuid>` + volUUID + `</uuid>
  <usage type='volume'><volume>/var/lib/x.img</volume></usage>
</secret>`
)

func TestDefineFormatsAsLibvirt(t *testing.T) {
	d := newDriver(t, t.TempDir())
	s, err := d.DefineSecret(ctx, volXML, 0)
	if err != nil {
		t.Fatal(err)
	}
	if compat.FormatUUID(s.UUID) != volUUID || s.UsageType != int32(libvirt.SecretUsageTypeVolume) || s.UsageID != "/var/lib/x.img" {
		t.Fatalf("defined %+v", s)
	}
	got, err := d.SecretXMLDesc(ctx, s.UUID, 0)
	if err != nil {
		t.Fatal(err)
	}
	// libvirtd 9.0's secret-dumpxml of the same definition.
	want := `<secret ephemeral='no' private='no'>
  <uuid>64e771b9-9599-40b1-befe-d03239f1c22c</uuid>
  <description>test vol</description>
  <usage type='volume'>
    <volume>/var/lib/x.img</volume>
  </usage>
</secret>
`
	if got != want {
		t.Fatalf("dumpxml:\n%s\nwant:\n%s", got, want)
	}
}

func TestUsageTypes(t *testing.T) {
	d := newDriver(t, t.TempDir())
	for _, c := range []struct {
		xml  string
		typ  libvirt.SecretUsageType
		id   string
		elem string
	}{
		{`<secret><usage type='ceph'><name>client.admin</name></usage></secret>`, libvirt.SecretUsageTypeCeph, "client.admin", "<name>client.admin</name>"},
		{`<secret><usage type='iscsi'><target>iqn.x</target></usage></secret>`, libvirt.SecretUsageTypeIscsi, "iqn.x", "<target>iqn.x</target>"},
		{`<secret><usage type='tls'><name>t1</name></usage></secret>`, libvirt.SecretUsageTypeTLS, "t1", "<name>t1</name>"},
		{`<secret><usage type='vtpm'><name>vt</name></usage></secret>`, libvirt.SecretUsageTypeVtpm, "vt", "<name>vt</name>"},
		{`<secret/>`, libvirt.SecretUsageTypeNone, "", ""},
		{`<secret/>`, libvirt.SecretUsageTypeNone, "", ""}, // any number without usage
	} {
		s, err := d.DefineSecret(ctx, c.xml, 0)
		if err != nil {
			t.Fatalf("%s: %v", c.xml, err)
		}
		if s.UsageType != int32(c.typ) || s.UsageID != c.id {
			t.Errorf("%s: got %d %q", c.xml, s.UsageType, s.UsageID)
		}
		x, _ := d.SecretXMLDesc(ctx, s.UUID, 0)
		if !strings.Contains(x, c.elem) || !strings.Contains(x, "<uuid>"+compat.FormatUUID(s.UUID)+"</uuid>") {
			t.Errorf("%s: dumpxml %s", c.xml, x)
		}
		if c.typ != libvirt.SecretUsageTypeNone {
			got, err := d.LookupSecretByUsage(ctx, int32(c.typ), c.id)
			if err != nil || got.UUID != s.UUID {
				t.Errorf("lookup by usage %d %q: %v %v", c.typ, c.id, got, err)
			}
		}
	}
	list, _ := d.ListAllSecrets(ctx, 0)
	if len(list) != 6 {
		t.Fatalf("%d secrets listed, want 6", len(list))
	}
	_, err := d.LookupSecretByUsage(ctx, int32(libvirt.SecretUsageTypeNone), "")
	wantErr(t, err, libvirt.ErrNoSecret, "Secret not found: no secret with matching usage ''")
	_, err = d.LookupSecretByUsage(ctx, int32(libvirt.SecretUsageTypeVolume), "t1")
	wantErr(t, err, libvirt.ErrNoSecret, "Secret not found: no secret with matching usage 't1'")
}

// The messages are libvirtd 9.0's, seen with virsh secret-define.
func TestBadXMLErrors(t *testing.T) {
	d := newDriver(t, t.TempDir())
	for _, c := range []struct {
		xml  string
		code libvirt.ErrorNumber
		msg  string
	}{
		{`<secret><usage type="foo"/></secret>`, libvirt.ErrConfigUnsupported, "unsupported configuration: unknown secret usage type foo"},
		{`<secret><usage/></secret>`, libvirt.ErrXMLError, "XML error: unknown secret usage type"},
		{`<secret><usage type="volume"/></secret>`, libvirt.ErrInternalError, "internal error: volume usage specified, but volume path is missing"},
		{`<secret><usage type="ceph"/></secret>`, libvirt.ErrInternalError, "internal error: Ceph usage specified, but name is missing"},
		{`<secret><usage type="iscsi"/></secret>`, libvirt.ErrInternalError, "internal error: iSCSI usage specified, but target is missing"},
		{`<secret><usage type="tls"/></secret>`, libvirt.ErrInternalError, "internal error: TLS usage specified, but name is missing"},
		{`<secret><usage type="vtpm"/></secret>`, libvirt.ErrInternalError, "internal error: vTPM usage specified, but name is missing"},
		{`<secret><uuid>zzz</uuid></secret>`, libvirt.ErrInternalError, "internal error: malformed uuid element"},
		{`<secret ephemeral="maybe"/>`, libvirt.ErrXMLError, "XML error: invalid value of 'ephemeral'"},
		{`<secret private="maybe"/>`, libvirt.ErrXMLError, "XML error: invalid value of 'private'"},
		{`<foo/>`, libvirt.ErrXMLError, "XML error: expecting root element of 'secret', not 'foo'"},
		{``, libvirt.ErrXMLDetail, "(definition_of_secret):1: Document is empty"},
		{`<secret>`, libvirt.ErrXMLDetail, "(definition_of_secret):1: Premature end of data"},
	} {
		_, err := d.DefineSecret(ctx, c.xml, 0)
		wantErr(t, err, c.code, c.msg)
	}
	_, err := d.DefineSecret(ctx, `<secret/>`, 2)
	wantErr(t, err, libvirt.ErrInvalidArg, "unsupported flags (0x2) in function secretDefineXML")
	if l, _ := d.ListAllSecrets(ctx, 0); len(l) != 0 {
		t.Fatalf("failed defines left %d secrets", len(l))
	}
}

func TestRedefineRules(t *testing.T) {
	d := newDriver(t, t.TempDir())
	if _, err := d.DefineSecret(ctx, volXML, 0); err != nil {
		t.Fatal(err)
	}
	_, err := d.DefineSecret(ctx, `<secret><usage type='volume'><volume>/var/lib/x.img</volume></usage></secret>`, 0)
	wantErr(t, err, libvirt.ErrInternalError, "internal error: a secret with UUID "+volUUID+" already defined for use with /var/lib/x.img")
	_, err = d.DefineSecret(ctx, `<secret><uuid>`+volUUID+`</uuid><usage type='ceph'><name>other</name></usage></secret>`, 0)
	wantErr(t, err, libvirt.ErrInternalError, "internal error: a secret with UUID "+volUUID+" is already defined for use with /var/lib/x.img")

	priv := `<secret private='yes'><uuid>11111111-2222-3333-4444-555555555555</uuid><usage type='ceph'><name>c</name></usage></secret>`
	if _, err := d.DefineSecret(ctx, priv, 0); err != nil {
		t.Fatal(err)
	}
	_, err = d.DefineSecret(ctx, strings.Replace(priv, "yes", "no", 1), 0)
	wantErr(t, err, libvirt.ErrInternalError, "internal error: cannot change private flag on existing secret")
	// Same UUID and usage: a new description replaces the old one.
	if _, err := d.DefineSecret(ctx, strings.Replace(volXML, "test vol", "renamed", 1), 0); err != nil {
		t.Fatal(err)
	}
	x, _ := d.SecretXMLDesc(ctx, mustUUID(t, volUUID), 0)
	if !strings.Contains(x, "<description>renamed</description>") {
		t.Fatalf("redefined: %s", x)
	}
}

func TestValues(t *testing.T) {
	d := newDriver(t, t.TempDir())
	s, _ := d.DefineSecret(ctx, volXML, 0)
	_, err := d.SecretValue(ctx, s.UUID, 0)
	wantErr(t, err, libvirt.ErrNoSecret, "Secret not found: secret '"+volUUID+"' does not have a value")
	if err := d.SetSecretValue(ctx, s.UUID, []byte("hunter2\x00\xff"), 0); err != nil {
		t.Fatal(err)
	}
	v, err := d.SecretValue(ctx, s.UUID, 0)
	if err != nil || string(v) != "hunter2\x00\xff" {
		t.Fatalf("value %q %v", v, err)
	}
	// An empty value is a value.
	if err := d.SetSecretValue(ctx, s.UUID, nil, 0); err != nil {
		t.Fatal(err)
	}
	if v, err := d.SecretValue(ctx, s.UUID, 0); err != nil || len(v) != 0 {
		t.Fatalf("empty value %q %v", v, err)
	}
	_, err = d.SecretValue(ctx, s.UUID, 1)
	wantErr(t, err, libvirt.ErrInvalidArg, "unsupported flags (0x1) in function secretGetValue")
	err = d.SetSecretValue(ctx, s.UUID, []byte("x"), 1)
	wantErr(t, err, libvirt.ErrInvalidArg, "unsupported flags (0x1) in function secretSetValue")

	p, _ := d.DefineSecret(ctx, `<secret private='yes'/>`, 0)
	if err := d.SetSecretValue(ctx, p.UUID, []byte("topsecret"), 0); err != nil {
		t.Fatal(err)
	}
	_, err = d.SecretValue(ctx, p.UUID, 0)
	wantErr(t, err, libvirt.ErrInvalidSecret, "Invalid secret: secret is private")

	missing := mustUUID(t, "11111111-2222-3333-4444-555555555556")
	msg := "Secret not found: no secret with matching uuid '11111111-2222-3333-4444-555555555556'"
	_, err = d.SecretValue(ctx, missing, 0)
	wantErr(t, err, libvirt.ErrNoSecret, msg)
	wantErr(t, d.SetSecretValue(ctx, missing, []byte("x"), 0), libvirt.ErrNoSecret, msg)
	wantErr(t, d.UndefineSecret(ctx, missing), libvirt.ErrNoSecret, msg)
	_, err = d.SecretXMLDesc(ctx, missing, 0)
	wantErr(t, err, libvirt.ErrNoSecret, msg)
	_, err = d.LookupSecretByUUID(ctx, missing)
	wantErr(t, err, libvirt.ErrNoSecret, msg)
}

func TestListFlags(t *testing.T) {
	d := newDriver(t, t.TempDir())
	ids := map[string]libvirt.UUID{}
	for name, x := range map[string]string{
		"plain":    `<secret/>`,
		"eph":      `<secret ephemeral='yes'/>`,
		"priv":     `<secret private='yes'/>`,
		"eph+priv": `<secret ephemeral='yes' private='yes'/>`,
	} {
		s, err := d.DefineSecret(ctx, x, 0)
		if err != nil {
			t.Fatal(err)
		}
		ids[name] = s.UUID
	}
	names := func(flags libvirt.ConnectListAllSecretsFlags) map[string]bool {
		l, err := d.ListAllSecrets(ctx, flags)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, s := range l {
			for n, u := range ids {
				if u == s.UUID {
					out[n] = true
				}
			}
		}
		return out
	}
	for flags, want := range map[libvirt.ConnectListAllSecretsFlags][]string{
		0:                                     {"plain", "eph", "priv", "eph+priv"},
		libvirt.ConnectListSecretsEphemeral:   {"eph", "eph+priv"},
		libvirt.ConnectListSecretsNoEphemeral: {"plain", "priv"},
		libvirt.ConnectListSecretsPrivate:     {"priv", "eph+priv"},
		libvirt.ConnectListSecretsNoPrivate:   {"plain", "eph"},
		libvirt.ConnectListSecretsEphemeral | libvirt.ConnectListSecretsNoPrivate:   {"eph"},
		libvirt.ConnectListSecretsEphemeral | libvirt.ConnectListSecretsNoEphemeral: {"plain", "eph", "priv", "eph+priv"},
	} {
		got := names(flags)
		if len(got) != len(want) {
			t.Errorf("flags %#x: got %v, want %v", flags, got, want)
		}
		for _, n := range want {
			if !got[n] {
				t.Errorf("flags %#x: %s missing (got %v)", flags, n, got)
			}
		}
	}
	_, err := d.ListAllSecrets(ctx, 16)
	wantErr(t, err, libvirt.ErrInvalidArg, "unsupported flags (0x10) in function secretConnectListAllSecrets")
}

// Persistent secrets and values survive a new driver on the same
// directory (a daemon restart); ephemeral ones do not, and never touch the
// disk. Files are the daemon's only: 0700 directory, 0600 files.
func TestPersistence(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "secrets")
	d := newDriver(t, dir)
	p, _ := d.DefineSecret(ctx, volXML, 0)
	if err := d.SetSecretValue(ctx, p.UUID, []byte("persisted"), 0); err != nil {
		t.Fatal(err)
	}
	e, _ := d.DefineSecret(ctx, `<secret ephemeral='yes'><usage type='ceph'><name>e</name></usage></secret>`, 0)
	if err := d.SetSecretValue(ctx, e.UUID, []byte("gone"), 0); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("secrets dir mode %v %v", fi.Mode(), err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Fatalf("files %v, want the persistent secret's .xml and .base64 only", ents)
	}
	for _, en := range ents {
		fi, _ := en.Info()
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", en.Name(), fi.Mode())
		}
		b, _ := os.ReadFile(filepath.Join(dir, en.Name()))
		if strings.Contains(string(b), "persisted") {
			t.Errorf("%s holds the value in clear", en.Name())
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, volUUID+".base64")); string(b) != "cGVyc2lzdGVk" {
		t.Errorf("base64 file %q", b)
	}

	d2 := newDriver(t, dir)
	v, err := d2.SecretValue(ctx, p.UUID, 0)
	if err != nil || string(v) != "persisted" {
		t.Fatalf("after restart: %q %v", v, err)
	}
	if _, err := d2.LookupSecretByUUID(ctx, e.UUID); !compat.Is(err, libvirt.ErrNoSecret) {
		t.Fatalf("ephemeral secret after restart: %v", err)
	}
	if err := d2.UndefineSecret(ctx, p.UUID); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("undefine left %v", ents)
	}
}

// Turning a secret ephemeral takes it off the disk; turning it persistent
// puts its value there.
func TestEphemeralSwitch(t *testing.T) {
	dir := t.TempDir()
	d := newDriver(t, dir)
	x := `<secret ephemeral='%s'><uuid>` + volUUID + `</uuid></secret>`
	if _, err := d.DefineSecret(ctx, strings.Replace(x, "%s", "yes", 1), 0); err != nil {
		t.Fatal(err)
	}
	u := mustUUID(t, volUUID)
	if err := d.SetSecretValue(ctx, u, []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("ephemeral secret on disk: %v", ents)
	}
	if _, err := d.DefineSecret(ctx, strings.Replace(x, "%s", "no", 1), 0); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Fatalf("persistent secret files: %v", ents)
	}
	if v, err := newDriver(t, dir).SecretValue(ctx, u, 0); err != nil || string(v) != "v" {
		t.Fatalf("value after the switch and a restart: %q %v", v, err)
	}
	if _, err := d.DefineSecret(ctx, strings.Replace(x, "%s", "yes", 1), 0); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("ephemeral again, still on disk: %v", ents)
	}
	if v, err := d.SecretValue(ctx, u, 0); err != nil || string(v) != "v" {
		t.Fatalf("value kept in memory: %q %v", v, err)
	}
}

func TestBadFilesSkipped(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "junk.xml"), []byte("<nope"), 0o600)
	os.WriteFile(filepath.Join(dir, volUUID+".xml"), []byte(volXML), 0o600)
	os.WriteFile(filepath.Join(dir, volUUID+".base64"), []byte("!!!"), 0o600)
	d := newDriver(t, dir)
	if l, _ := d.ListAllSecrets(ctx, 0); len(l) != 0 {
		t.Fatalf("loaded %v from bad files", l)
	}
}

func TestEvents(t *testing.T) {
	d := newDriver(t, t.TempDir())
	var got []driver.SecretEvent
	d.SetSecretEventSink(func(ev driver.SecretEvent) { got = append(got, ev) })
	s, _ := d.DefineSecret(ctx, volXML, 0)
	d.SetSecretValue(ctx, s.UUID, []byte("x"), 0)
	d.UndefineSecret(ctx, s.UUID)
	want := []driver.SecretEvent{
		{ID: libvirt.SecretEventIDLifecycle, Secret: s, Event: int32(libvirt.SecretEventDefined)},
		{ID: libvirt.SecretEventIDValueChanged, Secret: s},
		{ID: libvirt.SecretEventIDLifecycle, Secret: s, Event: int32(libvirt.SecretEventUndefined)},
	}
	if len(got) != len(want) {
		t.Fatalf("events %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("event %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}
