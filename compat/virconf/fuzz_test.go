package virconf

import (
	"bytes"
	"reflect"
	"testing"
)

func FuzzParse(f *testing.F) {
	seeds := []string{
		"",
		"# only a comment\n",
		`listen_tls = 0
listen_tcp = 1
tcp_port = "16509"
listen_addr = "0.0.0.0"
auth_tcp = "none"
unix_sock_rw_perms = "0770"
host_uuid = "11111111-2222-3333-4444-555555555555"
`,
		`# qemu.conf
vnc_listen = "0.0.0.0"
security_driver = [ "selinux", "apparmor" ]
cgroup_device_acl = [
    "/dev/null", "/dev/full", "/dev/zero",
    "/dev/random", "/dev/urandom",   # entropy
    "/dev/ptmx", "/dev/kvm",
]
user = "+0"
max_processes = 0
`,
		"a = \"\"\"multi\nline\"\"\"\nb = 'x'; c = -3,\r\n",
		"a = [[1, [2]], []]",
		// Broken inputs.
		"a = \"unterminated\n",
		"a = [1, 2\n",
		"a = \"\"\"never closed",
		"foo bar",
		"= 1",
		"a = 99999999999999999999",
		"a = yes",
		"a = 1 b = 2",
		"a = [1 2]",
		"\xEF\xBB\xBF\x00\xff = 1",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		orig := bytes.Clone(data)
		f1, err1 := Parse(data)
		if !bytes.Equal(orig, data) {
			t.Fatal("Parse modified its input")
		}
		f2, err2 := Parse(data)
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("non-deterministic result: %v vs %v", err1, err2)
		}
		if err1 != nil {
			if err1.Error() != err2.Error() {
				t.Fatalf("non-deterministic error: %q vs %q", err1, err2)
			}
			se, ok := err1.(*SyntaxError)
			if !ok || se.Line < 1 || se.Column < 1 {
				t.Fatalf("bad error %#v", err1)
			}
			return
		}
		if !reflect.DeepEqual(f1, f2) {
			t.Fatalf("non-deterministic parse:\n%+v\n%+v", f1, f2)
		}
		lines := bytes.Count(data, []byte("\n")) + 1
		prev := 1
		for _, e := range f1.Entries {
			if e.Line < prev || e.Line > lines {
				t.Fatalf("entry %q has line %d (previous %d, file has %d lines)", e.Key, e.Line, prev, lines)
			}
			prev = e.Line
			if e.Key == "" || !isKeyStart(e.Key[0]) {
				t.Fatalf("invalid key %q", e.Key)
			}
			checkValue(t, e.Value)
			// Lookup gives the first occurrence, as libvirt does.
			if got, ok := f1.Lookup(e.Key); !ok || got.Line > e.Line {
				t.Fatalf("Lookup(%q) = %+v, %v; want an entry at or before line %d", e.Key, got, ok, e.Line)
			}
		}
	})
}

func checkValue(t *testing.T, v Value) {
	t.Helper()
	switch v.Kind {
	case String, Int:
	case List:
		for _, item := range v.List {
			checkValue(t, item)
		}
	default:
		t.Fatalf("value with invalid kind: %+v", v)
	}
}
