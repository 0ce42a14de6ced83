// Package virconf parses the configuration file syntax used by libvirt's
// daemons (libvirtd.conf, qemu.conf, ...), known inside libvirt as
// "virconf".
//
// The syntax is a tiny subset of Python:
//
//	# comment
//	key = 1                     # integer (optionally signed)
//	key = "string"              # double quotes, no escapes
//	key = 'string'              # single quotes, no escapes
//	key = """multi
//	line"""                     # triple quotes may span lines
//	key = [ "a", 2,             # lists may span lines, contain
//	        "b", ]              # comments and a trailing comma
//	a = 1; b = 2                # ';' separates statements on one line
//
// The parser accepts everything libvirt accepts for its daemon
// configuration files and a little more (comments inside lists, a trailing
// ',' after a value, keys starting with '_' or containing '.'), because
// govirtd should never refuse a file that unmodified libvirtd would load.
// It rejects what libvirt would silently misread, such as integers that
// overflow 64 bits.
package virconf

import (
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Kind is the type of a configuration value.
type Kind int

// The value kinds. The zero Kind is deliberately invalid so that an
// uninitialised Value is never mistaken for a real one.
const (
	String Kind = iota + 1
	Int
	List
)

// String returns the kind's name with an article ("a string", "an
// integer", "a list"), which is the form configuration error messages need
// ("expected an integer, got a string").
func (k Kind) String() string {
	switch k {
	case String:
		return "a string"
	case Int:
		return "an integer"
	case List:
		return "a list"
	}
	return fmt.Sprintf("an invalid kind (%d)", int(k))
}

// Value is one parsed value. Only the field matching Kind is meaningful.
type Value struct {
	Kind Kind
	Str  string
	Int  int64
	List []Value
}

// Entry is one "key = value" statement.
type Entry struct {
	Key   string
	Value Value
	// Line is the 1-based line on which the key appears.
	Line int
}

// File is a parsed configuration file. Entries are kept in file order,
// including repeated keys, so callers can diagnose duplicates.
type File struct {
	Entries []Entry
}

// Lookup returns the first entry for key: libvirt's virConfGetValue uses the
// first occurrence, and a drop-in must read a file the way libvirtd does.
// Keys are matched case-sensitively, as libvirt does.
func (f *File) Lookup(key string) (Entry, bool) {
	if f == nil {
		return Entry{}, false
	}
	for _, e := range f.Entries {
		if e.Key == key {
			return e, true
		}
	}
	return Entry{}, false
}

// SyntaxError describes why a file could not be parsed and where.
type SyntaxError struct {
	Line   int // 1-based line
	Column int // 1-based column in bytes
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Column, e.Msg)
}

// maxListDepth bounds list nesting. libvirt accepts nested lists, so we do
// too, but unbounded recursion on hostile input ("[[[[...") must not be able
// to exhaust the stack.
const maxListDepth = 32

// Parse parses a whole configuration file. On failure the returned error is
// a *SyntaxError naming the line and column of the problem.
func Parse(data []byte) (*File, error) {
	p := &parser{data: data, line: 1}
	// Tolerate a UTF-8 byte order mark written by some editors.
	if len(data) >= 3 && data[0] == 0xEF && data[1] == 0xBB && data[2] == 0xBF {
		p.pos = 3
		p.lineStart = 3
	}
	f := &File{}
	for {
		e, ok, err := p.statement()
		if err != nil {
			return nil, err
		}
		if !ok {
			return f, nil
		}
		f.Entries = append(f.Entries, e)
	}
}

type parser struct {
	data      []byte
	pos       int
	line      int
	lineStart int // offset of the first byte of the current line
}

// mark records a location for error messages that should point at the start
// of a construct (e.g. an unterminated string) rather than where the parser
// gave up.
type mark struct{ line, col int }

func (p *parser) mark() mark { return mark{p.line, p.pos - p.lineStart + 1} }

func (p *parser) errAt(m mark, format string, args ...any) error {
	return &SyntaxError{Line: m.line, Column: m.col, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) errf(format string, args ...any) error {
	return p.errAt(p.mark(), format, args...)
}

func (p *parser) eof() bool { return p.pos >= len(p.data) }

func (p *parser) cur() byte {
	if p.eof() {
		return 0
	}
	return p.data[p.pos]
}

// advance consumes one byte, keeping the line accounting right.
func (p *parser) advance() {
	if p.eof() {
		return
	}
	if p.data[p.pos] == '\n' {
		p.line++
		p.lineStart = p.pos + 1
	}
	p.pos++
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' }
func isEOL(c byte) bool   { return c == '\n' || c == '\r' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlpha(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }

func isKeyStart(c byte) bool { return isAlpha(c) || c == '_' }
func isKeyChar(c byte) bool  { return isAlpha(c) || isDigit(c) || c == '_' || c == '.' }

func (p *parser) skipBlanks() {
	for !p.eof() && isBlank(p.cur()) {
		p.advance()
	}
}

func (p *parser) skipComment() {
	for !p.eof() && !isEOL(p.cur()) {
		p.advance()
	}
}

// skipSpace skips blanks, line ends and comments; used between statements
// and inside lists, where none of them is significant.
func (p *parser) skipSpace() {
	for !p.eof() {
		switch c := p.cur(); {
		case isBlank(c) || isEOL(c):
			p.advance()
		case c == '#':
			p.skipComment()
		default:
			return
		}
	}
}

// describe names the byte at the current position for error messages.
func (p *parser) describe() string {
	if p.eof() {
		return "end of file"
	}
	c := p.cur()
	if isEOL(c) {
		return "end of line"
	}
	if c < utf8.RuneSelf {
		if strconv.IsPrint(rune(c)) {
			return fmt.Sprintf("'%c'", c)
		}
		return fmt.Sprintf("byte 0x%02x", c)
	}
	r, _ := utf8.DecodeRune(p.data[p.pos:])
	if r == utf8.RuneError {
		return fmt.Sprintf("byte 0x%02x", c)
	}
	return fmt.Sprintf("%q", r)
}

// statement parses one "key = value" statement. ok is false at end of
// input.
func (p *parser) statement() (e Entry, ok bool, err error) {
	p.skipSpace()
	if p.eof() {
		return Entry{}, false, nil
	}
	start := p.mark()
	if !isKeyStart(p.cur()) {
		return Entry{}, false, p.errf("expected a key name, found %s", p.describe())
	}
	begin := p.pos
	for !p.eof() && isKeyChar(p.cur()) {
		p.advance()
	}
	key := string(p.data[begin:p.pos])

	p.skipBlanks()
	if p.eof() || p.cur() != '=' {
		return Entry{}, false, p.errf("expected '=' after key %q, found %s", key, p.describe())
	}
	p.advance()
	p.skipBlanks()
	if p.eof() || isEOL(p.cur()) || p.cur() == '#' {
		return Entry{}, false, p.errf("missing value for key %q", key)
	}
	v, err := p.value(key, 0)
	if err != nil {
		return Entry{}, false, err
	}

	// What may follow a value: blanks, then an optional ';' (libvirt's
	// statement separator, which also allows another statement on the same
	// line) or ',' (tolerated as a common slip), then an optional comment,
	// then the end of the line.
	p.skipBlanks()
	separated := false
	if c := p.cur(); !p.eof() && (c == ';' || c == ',') {
		p.advance()
		p.skipBlanks()
		separated = true
	}
	switch c := p.cur(); {
	case p.eof() || isEOL(c):
	case c == '#':
		p.skipComment()
	case separated && isKeyStart(c):
		// The next statement follows on the same line.
	default:
		return Entry{}, false, p.errf("unexpected %s after the value of key %q (end the line or use ';' before another statement)", p.describe(), key)
	}
	return Entry{Key: key, Value: v, Line: start.line}, true, nil
}

func (p *parser) value(key string, depth int) (Value, error) {
	switch c := p.cur(); {
	case c == '"' || c == '\'':
		s, err := p.str()
		return Value{Kind: String, Str: s}, err
	case c == '[':
		return p.list(key, depth)
	case isDigit(c) || c == '+' || c == '-':
		n, err := p.integer()
		return Value{Kind: Int, Int: n}, err
	case isKeyStart(c):
		// Catch the classic mistakes (yes/true, unquoted paths) with a
		// hint instead of a bare "unexpected 'y'".
		m := p.mark()
		begin := p.pos
		for !p.eof() && isKeyChar(p.cur()) {
			p.advance()
		}
		word := string(p.data[begin:p.pos])
		return Value{}, p.errAt(m, "unquoted value %q for key %q: strings must be quoted and booleans are written 0 or 1", word, key)
	default:
		return Value{}, p.errf("expected a value for key %q (a quoted string, an integer or a [list]), found %s", key, p.describe())
	}
}

func (p *parser) str() (string, error) {
	m := p.mark()
	if len(p.data)-p.pos >= 3 && string(p.data[p.pos:p.pos+3]) == `"""` {
		p.pos += 3
		begin := p.pos
		for !p.eof() {
			if len(p.data)-p.pos >= 3 && string(p.data[p.pos:p.pos+3]) == `"""` {
				s := string(p.data[begin:p.pos])
				p.pos += 3
				return s, nil
			}
			p.advance()
		}
		return "", p.errAt(m, `unterminated triple-quoted string (missing closing """)`)
	}
	quote := p.cur()
	p.advance()
	begin := p.pos
	for !p.eof() && p.cur() != quote && !isEOL(p.cur()) {
		p.advance()
	}
	if p.eof() || p.cur() != quote {
		return "", p.errAt(m, `unterminated string (missing closing %c; only """triple-quoted""" strings may span lines)`, quote)
	}
	s := string(p.data[begin:p.pos])
	p.advance()
	return s, nil
}

func (p *parser) integer() (int64, error) {
	m := p.mark()
	begin := p.pos
	if c := p.cur(); c == '+' || c == '-' {
		p.advance()
	}
	if p.eof() || !isDigit(p.cur()) {
		return 0, p.errAt(m, "expected digits after sign, found %s", p.describe())
	}
	for !p.eof() && isKeyChar(p.cur()) {
		p.advance()
	}
	text := string(p.data[begin:p.pos])
	n, err := strconv.ParseInt(text, 10, 64)
	if err == nil {
		return n, nil
	}
	if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
		return 0, p.errAt(m, "integer %s is out of range (must fit in 64 bits)", text)
	}
	return 0, p.errAt(m, "invalid integer %q: only decimal integers are allowed (quote the value if it is a string)", text)
}

func (p *parser) list(key string, depth int) (Value, error) {
	m := p.mark()
	if depth >= maxListDepth {
		return Value{}, p.errf("lists nested more than %d deep", maxListDepth)
	}
	p.advance() // '['
	items := []Value{}
	for {
		p.skipSpace()
		if p.eof() {
			return Value{}, p.errAt(m, "unterminated list for key %q (missing ']')", key)
		}
		if p.cur() == ']' {
			p.advance()
			return Value{Kind: List, List: items}, nil
		}
		v, err := p.value(key, depth+1)
		if err != nil {
			return Value{}, err
		}
		items = append(items, v)
		p.skipSpace()
		switch {
		case p.eof():
			return Value{}, p.errAt(m, "unterminated list for key %q (missing ']')", key)
		case p.cur() == ',':
			p.advance()
		case p.cur() == ']':
			// closed on the next iteration
		default:
			return Value{}, p.errf("expected ',' or ']' in the list for key %q, found %s", key, p.describe())
		}
	}
}
