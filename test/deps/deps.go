// Package deps knows which Debian package provides each external program
// and file that govirtd's tests, demo and benchmarks use, so that a missing
// one fails with one line naming the package, instead of a cryptic
// "exit status 127" from deep inside a tool.
//
// The list is packages.txt beside this file; scripts/deps.sh installs
// exactly the packages it names.
package deps

import (
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

//go:embed packages.txt
var packagesTxt string

// Entry is one line of packages.txt.
type Entry struct {
	Package  string
	Provides []string // command names or absolute paths
}

// ErrNotListed is returned for a name that packages.txt does not list: the
// list must grow with every program a test starts.
var ErrNotListed = errors.New("not listed in test/deps/packages.txt")

var entries, providers = mustParse(packagesTxt)

// Entries returns the list, in file order.
func Entries() []Entry { return append([]Entry(nil), entries...) }

// Packages returns every package named in the list, in file order.
func Packages() []string {
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = e.Package
	}
	return out
}

// PackageOf returns the package that provides name.
func PackageOf(name string) (string, bool) {
	p, ok := providers[name]
	return p, ok
}

// Missing is the error for a program or file that is not there.
type Missing struct {
	Name    string
	Package string
}

func (m *Missing) Error() string {
	what := "command " + m.Name + " is not installed"
	if filepath.IsAbs(m.Name) {
		what = m.Name + " does not exist"
	}
	return fmt.Sprintf("%s: it comes with Debian package %s (run scripts/deps.sh, which installs every package the tests need)", what, m.Package)
}

// Find returns the path of a command (looked up on PATH) or checks that an
// absolute path exists. The name must be in the list.
func Find(name string) (string, error) {
	pkg, ok := providers[name]
	if !ok {
		return "", fmt.Errorf("%s: %w", name, ErrNotListed)
	}
	if filepath.IsAbs(name) {
		if _, err := os.Stat(name); err != nil {
			return "", &Missing{Name: name, Package: pkg}
		}
		return name, nil
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", &Missing{Name: name, Package: pkg}
	}
	return p, nil
}

// Check returns the first missing name's error, or nil.
func Check(names ...string) error {
	for _, n := range names {
		if _, err := Find(n); err != nil {
			return err
		}
	}
	return nil
}

// Require fails t with one line for the first name that is missing. A test
// does not skip: the README's test command installs everything, so a
// missing tool is a broken set-up, and a skip would read as a pass.
func Require(t testing.TB, names ...string) {
	t.Helper()
	if err := Check(names...); err != nil {
		t.Fatal(err)
	}
}

// Command returns the path of a command, failing t when it is missing.
func Command(t testing.TB, name string) string {
	t.Helper()
	p, err := Find(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustParse(text string) ([]Entry, map[string]string) {
	es, by, err := parse(text)
	if err != nil {
		panic("test/deps/packages.txt: " + err.Error())
	}
	return es, by
}

func parse(text string) ([]Entry, map[string]string, error) {
	var es []Entry
	by := map[string]string{}
	seen := map[string]bool{}
	for i, line := range strings.Split(text, "\n") {
		if c := strings.IndexByte(line, '#'); c >= 0 {
			line = line[:c]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		e := Entry{Package: f[0], Provides: f[1:]}
		if seen[e.Package] {
			return nil, nil, fmt.Errorf("line %d: package %s listed twice", i+1, e.Package)
		}
		seen[e.Package] = true
		for _, n := range e.Provides {
			if old, dup := by[n]; dup {
				return nil, nil, fmt.Errorf("line %d: %s provided by both %s and %s", i+1, n, old, e.Package)
			}
			by[n] = e.Package
		}
		es = append(es, e)
	}
	return es, by, nil
}

// Names returns every command and path in the list, sorted.
func Names() []string {
	out := make([]string, 0, len(providers))
	for n := range providers {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
