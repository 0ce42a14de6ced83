package qmp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// mockCmd is one command as the mock QEMU received it.
type mockCmd struct {
	Raw     string // the exact JSON text
	ID      json.RawMessage
	Execute string
	Args    json.RawMessage
	Files   []*os.File // received via SCM_RIGHTS
}

// mockHandler answers one command with a raw reply line (without the
// newline); "" sends nothing, leaving the client waiting.
type mockHandler func(s *mockQEMU, c mockCmd) string

// mockQEMU is a scripted QMP server on a unix socket: greeting,
// qmp_capabilities, per-command handlers (default {"return": {}}), events
// on demand and a connection it can drop.
type mockQEMU struct {
	t    *testing.T
	path string
	ln   *net.UnixListener

	// greet is sent on connect; nil means never greet.
	greet []byte
	// capsEvent, if set, is sent between the qmp_capabilities command and
	// its reply, which QEMU may do.
	capsEvent string

	mu       sync.Mutex
	handlers map[string]mockHandler
	cmds     []mockCmd
	conn     *net.UnixConn
	gotCmd   chan struct{} // signalled (non-blocking) per command

	writeMu sync.Mutex
}

const mockGreeting = `{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian test"}, "capabilities": ["oob"]}}`

func mockPath(t *testing.T) string {
	return filepath.Join(t.TempDir(), "qmp.sock")
}

func newMockQEMU(t *testing.T) *mockQEMU {
	t.Helper()
	s := newMockQEMUUnstarted(t, mockPath(t))
	s.start()
	return s
}

func newMockQEMUUnstarted(t *testing.T, path string) *mockQEMU {
	return &mockQEMU{
		t:        t,
		path:     path,
		greet:    []byte(mockGreeting),
		handlers: make(map[string]mockHandler),
		gotCmd:   make(chan struct{}, 1000),
	}
}

func (s *mockQEMU) start() {
	s.t.Helper()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: s.path, Net: "unix"})
	if err != nil {
		s.t.Fatalf("mock listen: %v", err)
	}
	s.ln = ln
	s.t.Cleanup(func() {
		ln.Close()
		s.drop()
	})
	go s.accept()
}

func (s *mockQEMU) accept() {
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conn = c
		s.mu.Unlock()
		go s.serve(c)
	}
}

func (s *mockQEMU) handle(cmd string, h mockHandler) {
	s.mu.Lock()
	s.handlers[cmd] = h
	s.mu.Unlock()
}

// answer is a handler that always answers with the given raw line.
func answer(line string) mockHandler {
	return func(*mockQEMU, mockCmd) string { return line }
}

func (s *mockQEMU) write(line string) error {
	s.mu.Lock()
	c := s.conn
	s.mu.Unlock()
	if c == nil {
		return errors.New("no connection")
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	_, err := c.Write([]byte(line + "\n"))
	return err
}

// emit sends an event with the given data (nil for none).
func (s *mockQEMU) emit(name string, data map[string]any, sec, usec int64) {
	s.t.Helper()
	ev := map[string]any{
		"event":     name,
		"timestamp": map[string]int64{"seconds": sec, "microseconds": usec},
	}
	if data != nil {
		ev["data"] = data
	}
	b, err := json.Marshal(ev)
	if err != nil {
		panic(err)
	}
	if err := s.write(string(b)); err != nil {
		s.t.Errorf("mock emit %s: %v", name, err)
	}
}

// drop closes the current connection, as a dying QEMU would.
func (s *mockQEMU) drop() {
	s.mu.Lock()
	c := s.conn
	s.conn = nil
	s.mu.Unlock()
	if c != nil {
		c.Close()
	}
}

func (s *mockQEMU) commands() []mockCmd {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]mockCmd(nil), s.cmds...)
}

// lastCommand returns the most recent command other than
// qmp_capabilities.
func (s *mockQEMU) lastCommand() mockCmd {
	s.t.Helper()
	cmds := s.commands()
	if len(cmds) == 0 {
		s.t.Fatal("mock received no command")
	}
	return cmds[len(cmds)-1]
}

func (s *mockQEMU) serve(c *net.UnixConn) {
	defer c.Close()
	if s.greet == nil {
		// Hold the connection open without a word, like a QEMU whose
		// monitor is busy with another client.
		io.Copy(io.Discard, c)
		return
	}
	if _, err := c.Write(append(append([]byte(nil), s.greet...), '\n')); err != nil {
		return
	}
	var pending []byte
	var files []*os.File
	buf := make([]byte, 64<<10)
	oob := make([]byte, syscall.CmsgSpace(4*4))
	for {
		n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
		if oobn > 0 {
			files = append(files, parseRights(s.t, oob[:oobn])...)
		}
		if n > 0 { // n may be -1 on error
			pending = append(pending, buf[:n]...)
		}
		for {
			pending = bytes.TrimLeft(pending, " \r\n\t")
			if len(pending) == 0 {
				break
			}
			dec := json.NewDecoder(bytes.NewReader(pending))
			var raw json.RawMessage
			if derr := dec.Decode(&raw); derr != nil {
				break // incomplete; read more
			}
			pending = pending[dec.InputOffset():]
			s.dispatch(c, raw, files)
			files = nil
		}
		if err != nil {
			return
		}
	}
}

func parseRights(t *testing.T, oob []byte) []*os.File {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		t.Errorf("mock: parse control message: %v", err)
		return nil
	}
	var files []*os.File
	for _, m := range msgs {
		fds, err := syscall.ParseUnixRights(&m)
		if err != nil {
			t.Errorf("mock: parse rights: %v", err)
			continue
		}
		for _, fd := range fds {
			files = append(files, os.NewFile(uintptr(fd), "received"))
		}
	}
	return files
}

func (s *mockQEMU) dispatch(c *net.UnixConn, raw json.RawMessage, files []*os.File) {
	var req struct {
		Execute   string          `json:"execute"`
		ExecOOB   string          `json:"exec-oob"`
		Arguments json.RawMessage `json:"arguments"`
		ID        json.RawMessage `json:"id"`
	}
	if err := json.Unmarshal(raw, &req); err != nil {
		s.t.Errorf("mock: bad command %s: %v", raw, err)
		return
	}
	if req.ExecOOB != "" {
		req.Execute = req.ExecOOB // answered the same way here
	}
	cmd := mockCmd{Raw: string(raw), ID: req.ID, Execute: req.Execute, Args: req.Arguments, Files: files}
	for _, f := range files {
		s.t.Cleanup(func() { f.Close() })
	}

	if req.Execute == "qmp_capabilities" {
		if s.capsEvent != "" {
			s.writeConn(c, s.capsEvent)
		}
		s.writeConn(c, withID(`{"return": {}}`, req.ID))
		return
	}
	s.mu.Lock()
	s.cmds = append(s.cmds, cmd)
	h := s.handlers[req.Execute]
	s.mu.Unlock()
	select {
	case s.gotCmd <- struct{}{}:
	default:
	}
	line := `{"return": {}}`
	if h != nil {
		line = h(s, cmd)
	}
	if line != "" {
		s.writeConn(c, withID(line, cmd.ID))
	}
}

// withID adds the command's id to a reply, as QEMU echoes it.
func withID(line string, id json.RawMessage) string {
	if id == nil {
		return line
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		return line // deliberately malformed replies stay as they are
	}
	// Appended as text, after the other members as QEMU puts it: a
	// re-encoded reply would lose large numbers and member order.
	end := strings.LastIndexByte(line, '}')
	if len(m) == 0 {
		return line[:end] + `"id": ` + string(id) + "}"
	}
	return line[:end] + `, "id": ` + string(id) + "}"
}

func (s *mockQEMU) writeConn(c *net.UnixConn, line string) {
	// QEMU puts each message on one line and the client reads lines; let
	// tests write replies readably.
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(line)); err == nil {
		line = b.String()
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	c.Write([]byte(line + "\n"))
}

// assertCommand checks that a command carries a numeric id and otherwise is
// exactly want.
func assertCommand(t *testing.T, c mockCmd, want string) {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(c.Raw), &m); err != nil {
		t.Fatalf("command %q: %v", c.Raw, err)
	}
	if _, ok := m["id"].(float64); !ok {
		t.Errorf("command %s has no numeric id", c.Raw)
	}
	delete(m, "id")
	assertJSON(t, mustJSON(m), want)
}

// assertJSON compares two JSON texts structurally (key order and spacing
// do not matter; extra or missing members do).
func assertJSON(t *testing.T, got, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("got invalid JSON %q: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want invalid JSON %q: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("JSON mismatch\n got: %s\nwant: %s", got, want)
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("marshal: %v", err))
	}
	return string(b)
}
