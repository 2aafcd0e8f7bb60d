// Command boundary is the import rule of `make lint`: what ships never
// imports the unit-test doubles (internal/fake) or the local stack
// (internal/local). It runs `go list -deps` on the root packages it is given
// (default ./functions/... ./infra, so every function added under
// ./functions is covered), and for each forbidden package a root reaches it
// prints the shortest import chain, root → … → forbidden package, and exits
// 1. Without -test, `go list -deps` leaves out what only tests import, so
// tests may use the doubles and the emulators.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
)

// defaultForbidden are the package trees product code must not import.
const defaultForbidden = "github.com/flowkey/flowkey/internal/fake,github.com/flowkey/flowkey/internal/local"

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("boundary", flag.ContinueOnError)
	fs.SetOutput(stderr)
	forbid := fs.String("forbid", defaultForbidden, "comma-separated import path trees the roots must not reach")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: boundary [-forbid tree,...] [package patterns] (default ./functions/... ./infra)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	roots := fs.Args()
	if len(roots) == 0 {
		roots = []string{"./functions/...", "./infra"}
	}
	forbidden := strings.Split(*forbid, ",")

	pkgs, err := goList(ctx, roots)
	if err != nil {
		fmt.Fprintln(stderr, "boundary:", err)
		return 2
	}
	chains := violations(pkgs, forbidden)
	if len(chains) == 0 {
		fmt.Fprintf(stdout, "boundary: %s reach %d packages, none under %s\n", strings.Join(roots, " "), len(pkgs), strings.Join(forbidden, " or "))
		return 0
	}
	fmt.Fprintf(stderr, "boundary: shipped code imports %s, which only tests may:\n", strings.Join(forbidden, " or "))
	for _, c := range chains {
		fmt.Fprintln(stderr, "  "+strings.Join(c, " → "))
	}
	return 1
}

// listedPackage is what boundary reads of one `go list -json` package.
type listedPackage struct {
	ImportPath string
	Imports    []string // what the package's non-test files import
	DepOnly    bool     // a dependency, not one of the patterns
	Error      *struct{ Err string }
}

// goList runs `go list -deps -json` on the patterns.
func goList(ctx context.Context, patterns []string) ([]listedPackage, error) {
	args := append([]string{"list", "-deps", "-json=ImportPath,Imports,DepOnly,Error"}, patterns...)
	cmd := exec.CommandContext(ctx, "go", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return decode(bytes.NewReader(out))
}

// decode reads the stream of JSON objects `go list -json` prints. A package
// that did not load is an error: its imports are unknown.
func decode(r io.Reader) ([]listedPackage, error) {
	var pkgs []listedPackage
	dec := json.NewDecoder(r)
	for {
		var p listedPackage
		err := dec.Decode(&p)
		if errors.Is(err, io.EOF) {
			return pkgs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read go list's output: %w", err)
		}
		if p.Error != nil {
			return nil, fmt.Errorf("go list: %s: %s", p.ImportPath, p.Error.Err)
		}
		pkgs = append(pkgs, p)
	}
}

// violations returns, for every root (a package that is not DepOnly) and
// every forbidden package it reaches, the shortest import chain from the
// root to it, by root and then by forbidden package. A chain stops at the first forbidden package on it:
// what that package imports in turn is its own business.
func violations(pkgs []listedPackage, forbidden []string) [][]string {
	imports := make(map[string][]string, len(pkgs))
	var roots []string
	for _, p := range pkgs {
		imports[p.ImportPath] = p.Imports
		if !p.DepOnly {
			roots = append(roots, p.ImportPath)
		}
	}
	slices.Sort(roots)
	var chains [][]string
	for _, root := range roots {
		chains = append(chains, chainsFrom(root, imports, forbidden)...)
	}
	return chains
}

// chainsFrom walks the import graph breadth first from root, so the first
// path found to a package is a shortest one.
func chainsFrom(root string, imports map[string][]string, forbidden []string) [][]string {
	parent := map[string]string{root: ""}
	queue := []string{root}
	var found []string
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if under(p, forbidden) {
			found = append(found, p)
			continue
		}
		for _, imp := range imports[p] {
			if _, seen := parent[imp]; !seen {
				parent[imp] = p
				queue = append(queue, imp)
			}
		}
	}
	slices.Sort(found)
	chains := make([][]string, 0, len(found))
	for _, f := range found {
		var chain []string
		for p := f; p != ""; p = parent[p] {
			chain = append(chain, p)
		}
		slices.Reverse(chain)
		chains = append(chains, chain)
	}
	return chains
}

// under reports whether pkg is one of the trees, or inside one.
func under(pkg string, trees []string) bool {
	for _, t := range trees {
		if t != "" && (pkg == t || strings.HasPrefix(pkg, t+"/")) {
			return true
		}
	}
	return false
}
