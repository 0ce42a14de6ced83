package deps

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// repoRoot is two levels up from this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("no go.mod at %s", root)
	}
	return root
}

func TestParse(t *testing.T) {
	es, by, err := parse("a x /p # c\n\n# only a comment\nb   y\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 2 || es[0].Package != "a" || !slices.Equal(es[0].Provides, []string{"x", "/p"}) || es[1].Package != "b" {
		t.Errorf("entries %+v", es)
	}
	if by["/p"] != "a" || by["y"] != "b" {
		t.Errorf("providers %v", by)
	}
	if _, _, err := parse("a x\na y\n"); err == nil {
		t.Error("a package listed twice was accepted")
	}
	if _, _, err := parse("a x\nb x\n"); err == nil {
		t.Error("one command from two packages was accepted")
	}
}

func TestMissingNamesThePackage(t *testing.T) {
	providers["govirtd-no-such-command"] = "govirtd-pkg"
	providers["/nonexistent/govirtd/file"] = "govirtd-pkg2"
	t.Cleanup(func() {
		delete(providers, "govirtd-no-such-command")
		delete(providers, "/nonexistent/govirtd/file")
	})
	_, err := Find("govirtd-no-such-command")
	var m *Missing
	if !errors.As(err, &m) || m.Package != "govirtd-pkg" {
		t.Fatalf("err %v", err)
	}
	want := "command govirtd-no-such-command is not installed: it comes with Debian package govirtd-pkg (run scripts/deps.sh, which installs every package the tests need)"
	if err.Error() != want {
		t.Errorf("message\n got %q\nwant %q", err, want)
	}
	if _, err := Find("/nonexistent/govirtd/file"); err == nil || !strings.Contains(err.Error(), "/nonexistent/govirtd/file does not exist: it comes with Debian package govirtd-pkg2") {
		t.Errorf("path: %v", err)
	}
	if _, err := Find("definitely-unlisted"); !errors.Is(err, ErrNotListed) {
		t.Errorf("unlisted: %v", err)
	}
}

// TestDepsShInstallsTheList checks that scripts/deps.sh installs exactly
// the packages of packages.txt, so the two cannot drift apart.
func TestDepsShInstallsTheList(t *testing.T) {
	out, err := exec.Command("bash", filepath.Join(repoRoot(t), "scripts/deps.sh"), "--list").Output()
	if err != nil {
		t.Fatalf("deps.sh --list: %v", err)
	}
	got := strings.Fields(string(out))
	if !slices.Equal(got, Packages()) {
		t.Errorf("deps.sh --list = %v, packages.txt = %v", got, Packages())
	}
}

// essential commands every Debian system has (Essential: yes packages and
// Go itself), which need no entry.
var essential = map[string]bool{"sh": true, "/bin/sh": true, "bash": true, "go": true}

// external names the programs the project's Go code starts by a literal
// name: exec.Command("x", exec.CommandContext(ctx, "x", exec.LookPath("x"),
// the e2e tests' run(t, timeout, "x", and deps.Require/Command arguments.
var external = []*regexp.Regexp{
	regexp.MustCompile(`exec\.Command\("([^"]+)"`),
	regexp.MustCompile(`exec\.CommandContext\(\w+, "([^"]+)"`),
	regexp.MustCompile(`exec\.LookPath\("([^"]+)"\)`),
	regexp.MustCompile(`\brun\(t, [^,]+, "([^"]+)"`),
	regexp.MustCompile(`deps\.(?:Command|Find)\(\w*,? ?"([^"]+)"\)`),
}

var requireArgs = regexp.MustCompile(`deps\.(?:Require|Check)\((?:t, )?((?:"[^"]+"(?:, )?)+)\)`)

// TestEveryExternalProgramIsListed reads the project's Go sources and fails
// for a program started by name that packages.txt does not list: a new
// tool in a test must come with the package that installs it.
func TestEveryExternalProgramIsListed(t *testing.T) {
	root := repoRoot(t)
	found := map[string]string{} // name -> first file
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "out" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "deps_test.go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		src := string(b)
		add := func(n string) {
			if _, ok := found[n]; !ok {
				found[n], _ = filepath.Rel(root, p)
			}
		}
		for _, re := range external {
			for _, m := range re.FindAllStringSubmatch(src, -1) {
				add(m[1])
			}
		}
		for _, m := range requireArgs.FindAllStringSubmatch(src, -1) {
			for _, q := range strings.Split(m[1], ",") {
				add(strings.Trim(strings.TrimSpace(q), `"`))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) < 5 {
		t.Fatalf("found only %v: the scan is broken", found)
	}
	for n, file := range found {
		if essential[n] {
			continue
		}
		if _, ok := PackageOf(n); !ok {
			t.Errorf("%s (started in %s) is not listed in packages.txt with the package that provides it", n, file)
		}
	}
}

// TestInstalledListIsTrue checks, on a machine where deps.sh ran, that
// each package really provides what the list says (dpkg -S), so the
// message a missing tool gets names the right package.
func TestInstalledListIsTrue(t *testing.T) {
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Skip("not a Debian system")
	}
	for _, e := range Entries() {
		for _, n := range e.Provides {
			p, err := Find(n)
			if err != nil {
				t.Errorf("%v", err)
				continue
			}
			out, err := exec.Command("dpkg", "-S", p).CombinedOutput()
			if err != nil && !filepath.IsAbs(n) {
				// usrmerge: dpkg knows /bin/x when PATH found /usr/bin/x.
				out, err = exec.Command("dpkg", "-S", strings.Replace(p, "/usr/", "/", 1)).CombinedOutput()
			}
			if err != nil {
				// Debian's alternatives (iptables): dpkg knows the target.
				if real, rerr := filepath.EvalSymlinks(p); rerr == nil && real != p {
					out, err = exec.Command("dpkg", "-S", real).CombinedOutput()
				}
			}
			if err != nil {
				t.Errorf("dpkg -S %s: %v %s", p, err, out)
				continue
			}
			// "pkg1, pkg2:amd64: /path"
			owners := string(out)
			if idx := strings.LastIndex(owners, ": "); idx > 0 {
				owners = owners[:idx]
			}
			ok := false
			for _, o := range strings.Split(owners, ",") {
				o = strings.TrimSpace(o)
				if o == e.Package || strings.HasPrefix(o, e.Package+":") {
					ok = true
				}
			}
			if !ok {
				t.Errorf("%s (%s) belongs to %q, packages.txt says %s", n, p, strings.TrimSpace(owners), e.Package)
			}
		}
	}
}
