// Command procgen generates govirtd's procedure tables from go-libvirt's
// generated sources, so that no procedure number or argument type is typed
// by hand.
//
// go-libvirt generates, from libvirt's remote_protocol.x, one Go struct per
// XDR structure (DomainLookupByNameArgs, ...Ret, ...Msg) and, in an internal
// package we cannot import, one constant per procedure. procgen reads both
// with go/parser and writes:
//
//	-mode rpc:    the Procedure constants and their libvirt names (rpc package)
//	-mode server: one typed binding method per callable procedure (server package)
package main

import (
	"bytes"
	"embed"
	"flag"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"
)

//go:embed *.tmpl
var templates embed.FS

// Proc is one procedure of libvirt's remote program.
type Proc struct {
	Num     int
	GoName  string // ConnectOpen
	CName   string // REMOTE_PROC_CONNECT_OPEN
	Short   string // CONNECT_OPEN, as libvirt's logs and docs name it
	Args    string // go-libvirt type name, or ""
	Ret     string // go-libvirt type name, or ""
	Message bool   // an event message (…Msg), never called by a client
}

func main() {
	mode := flag.String("mode", "", "rpc or server")
	out := flag.String("o", "", "output file")
	flag.Parse()
	dir, err := moduleDir("github.com/digitalocean/go-libvirt")
	if err != nil {
		log.Fatal(err)
	}
	procs, err := load(dir)
	if err != nil {
		log.Fatal(err)
	}
	tmpl := template.Must(template.ParseFS(templates, "*.tmpl"))
	var buf bytes.Buffer
	if err := tmpl.ExecuteTemplate(&buf, *mode+".tmpl", procs); err != nil {
		log.Fatal(err)
	}
	src, err := format.Source(buf.Bytes())
	if err != nil {
		log.Fatalf("format generated %s code: %v\n%s", *mode, err, buf.Bytes())
	}
	if err := os.WriteFile(*out, src, 0o644); err != nil {
		log.Fatal(err)
	}
}

// moduleDir asks the go command where the module this build uses lives, so
// the tables always match the go-libvirt version in go.mod.
func moduleDir(path string) (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", path).Output()
	if err != nil {
		return "", fmt.Errorf("locate %s: %w", path, err)
	}
	return strings.TrimSpace(string(out)), nil
}

var procConst = regexp.MustCompile(`^Proc(\w+)$`)

func load(dir string) ([]Proc, error) {
	fset := token.NewFileSet()
	constFile, err := parser.ParseFile(fset, filepath.Join(dir, "internal/constants/remote_protocol.gen.go"), nil, parser.ParseComments)
	if err != nil {
		return nil, err
	}
	typeFile, err := parser.ParseFile(fset, filepath.Join(dir, "remote_protocol.gen.go"), nil, 0)
	if err != nil {
		return nil, err
	}
	types := map[string]bool{}
	for _, decl := range typeFile.Decls {
		if gd, ok := decl.(*ast.GenDecl); ok && gd.Tok == token.TYPE {
			for _, spec := range gd.Specs {
				types[spec.(*ast.TypeSpec).Name.Name] = true
			}
		}
	}
	var procs []Proc
	for _, decl := range constFile.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				m := procConst.FindStringSubmatch(name.Name)
				if m == nil || i >= len(vs.Values) {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok {
					continue
				}
				num, err := strconv.Atoi(lit.Value)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", name.Name, err)
				}
				cname := cName(vs.Doc)
				if cname == "" {
					return nil, fmt.Errorf("%s: no REMOTE_PROC_ name in its comment", name.Name)
				}
				p := Proc{Num: num, GoName: m[1], CName: cname, Short: strings.TrimPrefix(cname, "REMOTE_PROC_")}
				if types[p.GoName+"Args"] {
					p.Args = p.GoName + "Args"
				}
				if types[p.GoName+"Ret"] {
					p.Ret = p.GoName + "Ret"
				}
				if types[p.GoName+"Msg"] {
					p.Message = true
					p.Args = p.GoName + "Msg"
				}
				procs = append(procs, p)
			}
		}
	}
	sort.Slice(procs, func(i, j int) bool { return procs[i].Num < procs[j].Num })
	if len(procs) < 400 {
		return nil, fmt.Errorf("found only %d procedures in %s: has go-libvirt's layout changed?", len(procs), dir)
	}
	return procs, nil
}

var cNamePattern = regexp.MustCompile(`REMOTE_PROC_\w+`)

func cName(doc *ast.CommentGroup) string {
	if doc == nil {
		return ""
	}
	return cNamePattern.FindString(doc.Text())
}
