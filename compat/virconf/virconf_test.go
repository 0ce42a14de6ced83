package virconf

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func str(s string) Value    { return Value{Kind: String, Str: s} }
func num(n int64) Value     { return Value{Kind: Int, Int: n} }
func list(v ...Value) Value { return Value{Kind: List, List: append([]Value{}, v...)} }

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Entry
	}{
		{"empty", "", nil},
		{"only comments and blanks", "# hello\n\n   \t\n# world", nil},
		{"int", "a = 1\n", []Entry{{"a", num(1), 1}}},
		{"negative and plus", "a = -1\nb = +7\nc=0", []Entry{{"a", num(-1), 1}, {"b", num(7), 2}, {"c", num(0), 3}}},
		{"int64 limits", "a = 9223372036854775807\nb = -9223372036854775808",
			[]Entry{{"a", num(9223372036854775807), 1}, {"b", num(-9223372036854775808), 2}}},
		{"double quoted", `a = "hello # not a comment"`, []Entry{{"a", str("hello # not a comment"), 1}}},
		{"single quoted", `a = 'say "hi"'`, []Entry{{"a", str(`say "hi"`), 1}}},
		{"no escapes", `a = "C:\temp\"`, []Entry{{"a", str(`C:\temp\`), 1}}},
		{"empty string", `a = ""`, []Entry{{"a", str(""), 1}}},
		{"triple quoted", "a = \"\"\"line1\nline \"2\"\n\"\"\"\nb = 2",
			[]Entry{{"a", str("line1\nline \"2\"\n"), 1}, {"b", num(2), 4}}},
		{"trailing comment", "a = 1 # one\nb = \"x\"# two", []Entry{{"a", num(1), 1}, {"b", str("x"), 2}}},
		{"no spaces", "a=1", []Entry{{"a", num(1), 1}}},
		{"leading indentation", "   a = 1", []Entry{{"a", num(1), 1}}},
		{"key chars", "_a.b_C9 = 1", []Entry{{"_a.b_C9", num(1), 1}}},
		{"semicolon", "a = 1;\nb = 2 ; # c", []Entry{{"a", num(1), 1}, {"b", num(2), 2}}},
		{"two statements on a line", "a = 1; b = 'x'", []Entry{{"a", num(1), 1}, {"b", str("x"), 1}}},
		{"trailing comma", "a = 1,", []Entry{{"a", num(1), 1}}},
		{"crlf", "a = 1\r\nb = \"x\"\r\n", []Entry{{"a", num(1), 1}, {"b", str("x"), 2}}},
		{"bom", "\xEF\xBB\xBFa = 1", []Entry{{"a", num(1), 1}}},
		{"empty list", "a = []\nb = [ \n ]", []Entry{{"a", list(), 1}, {"b", list(), 2}}},
		{"list", `a = [ "x", 'y', 3 ]`, []Entry{{"a", list(str("x"), str("y"), num(3)), 1}}},
		{"multi-line list with comments and trailing comma", `
tls_allowed_dn_list = [
    "DN1",   # first
    # a comment line
    "DN2",
]
after = 1
`, []Entry{{"tls_allowed_dn_list", list(str("DN1"), str("DN2")), 2}, {"after", num(1), 7}}},
		{"nested list", "a = [[1, 2], []]", []Entry{{"a", list(list(num(1), num(2)), list()), 1}}},
		{"duplicates kept in order", "a = 1\na = 2", []Entry{{"a", num(1), 1}, {"a", num(2), 2}}},
		{"string with comma in list", `a = ["x,y"]`, []Entry{{"a", list(str("x,y")), 1}}},
		{"realistic libvirtd.conf", `
# Master libvirt daemon configuration file
#
listen_tls = 0
listen_tcp = 1
tcp_port = "16509"
listen_addr = "192.168.0.1"
unix_sock_group = "libvirt"
unix_sock_rw_perms = "0770"
auth_tcp = "none"
#sasl_allowed_username_list = ["joe@EXAMPLE.COM", "fred@EXAMPLE.COM" ]
max_clients = 5000
log_level = 3
log_outputs="3:syslog:libvirtd"
`, []Entry{
			{"listen_tls", num(0), 4}, {"listen_tcp", num(1), 5}, {"tcp_port", str("16509"), 6},
			{"listen_addr", str("192.168.0.1"), 7}, {"unix_sock_group", str("libvirt"), 8},
			{"unix_sock_rw_perms", str("0770"), 9}, {"auth_tcp", str("none"), 10},
			{"max_clients", num(5000), 12}, {"log_level", num(3), 13},
			{"log_outputs", str("3:syslog:libvirtd"), 14},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse([]byte(tt.in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if len(f.Entries) == 0 && len(tt.want) == 0 {
				return
			}
			if !reflect.DeepEqual(f.Entries, tt.want) {
				t.Errorf("entries mismatch\n got: %+v\nwant: %+v", f.Entries, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		line     int
		col      int
		contains string
	}{
		{"missing equals", "a = 1\nfoo 1", 2, 5, `expected '=' after key "foo", found '1'`},
		{"missing equals at eol", "foo\n", 1, 4, `expected '=' after key "foo", found end of line`},
		{"missing value", "a =\n", 1, 4, `missing value for key "a"`},
		{"missing value before comment", "a = # x", 1, 5, `missing value for key "a"`},
		{"bad key start", "1a = 1", 1, 1, "expected a key name, found '1'"},
		{"stray semicolon", "; a = 1", 1, 1, "expected a key name, found ';'"},
		{"unquoted word", "listen_tcp = yes", 1, 14, `unquoted value "yes" for key "listen_tcp"`},
		{"unterminated double", "a = \"abc\nb = 1", 1, 5, "unterminated string (missing closing \""},
		{"unterminated single", "a = 'abc", 1, 5, "unterminated string (missing closing '"},
		{"unterminated triple", "x = 1\na = \"\"\"abc\n\n", 2, 5, "unterminated triple-quoted string"},
		{"hex", "a = 0x10", 1, 5, `invalid integer "0x10"`},
		{"float", "a = 1.5", 1, 5, `invalid integer "1.5"`},
		{"sign only", "a = -", 1, 5, "expected digits after sign, found end of file"},
		{"overflow", "a = 9223372036854775808", 1, 5, "out of range"},
		{"garbage after value", `a = "x" y`, 1, 9, `unexpected 'y' after the value of key "a"`},
		{"two values", "a = 1 2", 1, 7, `unexpected '2' after the value of key "a"`},
		{"statements without separator", "a = 1 b = 2", 1, 7, `unexpected 'b'`},
		{"unterminated list", "a = [1,\n2\n", 1, 5, `unterminated list for key "a"`},
		{"list missing comma", "a = [1 2]", 1, 8, `expected ',' or ']' in the list for key "a", found '2'`},
		{"list double comma", "a = [1,,2]", 1, 8, `expected a value for key "a"`},
		{"bad value char", "a = @", 1, 5, "found '@'"},
		{"nul byte", "a = 1\x00", 1, 6, "byte 0x00"},
		{"non-ascii", "a = 1 é", 1, 7, `'é'`},
		{"deep nesting", "a = " + strings.Repeat("[", 100), 1, 4 + maxListDepth + 1, "nested more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse([]byte(tt.in))
			if err == nil {
				t.Fatalf("Parse succeeded unexpectedly: %+v", f)
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %v is %T, want *SyntaxError", err, err)
			}
			if se.Line != tt.line || se.Column != tt.col {
				t.Errorf("position = line %d col %d, want line %d col %d (%v)", se.Line, se.Column, tt.line, tt.col, err)
			}
			if !strings.Contains(err.Error(), tt.contains) {
				t.Errorf("error %q does not contain %q", err, tt.contains)
			}
			if !strings.HasPrefix(err.Error(), "line ") {
				t.Errorf("error %q does not start with the line", err)
			}
		})
	}
}

func TestLookup(t *testing.T) {
	f, err := Parse([]byte("a = 1\nb = 2\na = 3\n"))
	if err != nil {
		t.Fatal(err)
	}
	e, ok := f.Lookup("a")
	if !ok || e.Value.Int != 1 || e.Line != 1 {
		t.Errorf("Lookup(a) = %+v, %v; want the first occurrence (1 on line 1), as libvirt", e, ok)
	}
	if _, ok := f.Lookup("A"); ok {
		t.Error("Lookup is case-insensitive; want case-sensitive like libvirt")
	}
	if _, ok := f.Lookup("missing"); ok {
		t.Error("Lookup(missing) found something")
	}
	var nilFile *File
	if _, ok := nilFile.Lookup("a"); ok {
		t.Error("Lookup on nil File found something")
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{String: "a string", Int: "an integer", List: "a list", 0: "an invalid kind (0)"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", int(k), got, want)
		}
	}
}
