package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const mod = "github.com/flowkey/flowkey"

// listJSON is `go list -deps -json` output as go prints it, test imports
// included: the fields boundary must not follow are there to be ignored.
const listJSON = `{
	"ImportPath": "fmt",
	"DepOnly": true
}
{
	"ImportPath": "` + mod + `/internal/fake/graphfake",
	"Imports": ["fmt"],
	"DepOnly": true
}
{
	"ImportPath": "` + mod + `/internal/rotation",
	"Imports": ["fmt", "` + mod + `/internal/secretdoc"],
	"TestImports": ["` + mod + `/internal/fake/graphfake", "testing"],
	"XTestImports": ["` + mod + `/internal/local/stack"],
	"DepOnly": true
}
{
	"ImportPath": "` + mod + `/internal/secretdoc",
	"Imports": ["fmt"],
	"DepOnly": true
}
{
	"ImportPath": "` + mod + `/functions/rotator",
	"Imports": ["fmt", "` + mod + `/internal/rotation"]
}
`

func decodeString(t *testing.T, s string) []listedPackage {
	t.Helper()
	pkgs, err := decode(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return pkgs
}

func TestViolations(t *testing.T) {
	forbidden := []string{mod + "/internal/fake", mod + "/internal/local"}
	pkg := func(path string, imports ...string) listedPackage {
		return listedPackage{ImportPath: path, Imports: imports, DepOnly: true}
	}
	root := func(path string, imports ...string) listedPackage {
		p := pkg(path, imports...)
		p.DepOnly = false
		return p
	}
	tests := []struct {
		name string
		pkgs []listedPackage
		want [][]string
	}{
		{
			name: "test-only imports are not followed",
			pkgs: decodeString(t, listJSON),
		},
		{
			name: "a chain through product packages",
			pkgs: []listedPackage{
				root("f/rotator", "rotation"), pkg("rotation", "secretdoc", mod+"/internal/fake/graphfake"),
				pkg("secretdoc"), pkg(mod + "/internal/fake/graphfake"),
			},
			want: [][]string{{"f/rotator", "rotation", mod + "/internal/fake/graphfake"}},
		},
		{
			name: "the shortest chain, whichever import comes first",
			pkgs: []listedPackage{
				root("f/a", "long1", "short"), pkg("long1", "long2"), pkg("long2", mod+"/internal/local/stack"),
				pkg("short", mod+"/internal/local/stack"), pkg(mod + "/internal/local/stack"),
			},
			want: [][]string{{"f/a", "short", mod + "/internal/local/stack"}},
		},
		{
			name: "every root and every forbidden package it reaches, by root then package",
			pkgs: []listedPackage{
				root("f/b", "shared"), root("f/a", "shared", mod+"/internal/local/demo"),
				pkg("shared", mod+"/internal/fake/logbuf"), pkg(mod + "/internal/fake/logbuf"), pkg(mod + "/internal/local/demo"),
			},
			want: [][]string{
				{"f/a", "shared", mod + "/internal/fake/logbuf"},
				{"f/a", mod + "/internal/local/demo"},
				{"f/b", "shared", mod + "/internal/fake/logbuf"},
			},
		},
		{
			name: "a chain stops at the first forbidden package",
			pkgs: []listedPackage{
				root("f/a", mod+"/internal/local/demo"), pkg(mod+"/internal/local/demo", mod+"/internal/local/stack"), pkg(mod + "/internal/local/stack"),
			},
			want: [][]string{{"f/a", mod + "/internal/local/demo"}},
		},
		{
			name: "a forbidden root is its own chain",
			pkgs: []listedPackage{root(mod + "/internal/local/graphsim")},
			want: [][]string{{mod + "/internal/local/graphsim"}},
		},
		{
			name: "a tree is a path prefix, not a string prefix",
			pkgs: []listedPackage{root("f/a", mod+"/internal/localconfig", mod+"/internal/fakes"), pkg(mod + "/internal/localconfig"), pkg(mod + "/internal/fakes")},
		},
		{
			name: "an import cycle ends",
			pkgs: []listedPackage{root("f/a", "x"), pkg("x", "y"), pkg("y", "x")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := violations(tt.pkgs, forbidden); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("violations =\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestDecodeRefusesAPackageThatDidNotLoad(t *testing.T) {
	_, err := decode(strings.NewReader(`{"ImportPath":"f/a","Error":{"Err":"no Go files in /x"}}`))
	if err == nil || !strings.Contains(err.Error(), "f/a: no Go files in /x") {
		t.Fatalf("decode = %v, want the package's load error", err)
	}
	if _, err := decode(strings.NewReader(`{"ImportPath":`)); err == nil {
		t.Fatal("decode accepted truncated JSON")
	}
}

// moduleRoot is where the real go list runs: the patterns are relative.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../../../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Fatalf("no module root at %s: %v", dir, err)
	}
	return dir
}

// On this module, with the real go: what ships keeps to the rule, a root
// under internal/local is named on stderr, and a pattern go cannot load is
// an error of its own (2), not a pass.
func TestRunOnThisModule(t *testing.T) {
	t.Chdir(moduleRoot(t))
	var out, errOut bytes.Buffer
	if code := run(context.Background(), nil, &out, &errOut); code != 0 {
		t.Fatalf("boundary on ./functions/... ./infra = %d, want 0:\n%s%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "none under "+mod+"/internal/fake or "+mod+"/internal/local") {
		t.Errorf("stdout = %q", out.String())
	}

	out.Reset()
	errOut.Reset()
	code := run(context.Background(), []string{"./internal/local/demo", "./internal/config"}, &out, &errOut)
	want := "boundary: shipped code imports " + mod + "/internal/fake or " + mod + "/internal/local, which only tests may:\n" +
		"  " + mod + "/internal/local/demo\n"
	if code != 1 || errOut.String() != want {
		t.Errorf("boundary on internal/local/demo = %d\n%s\nwant 1\n%s", code, errOut.String(), want)
	}

	if code := run(context.Background(), []string{"./no/such/dir"}, &out, &errOut); code != 2 {
		t.Errorf("boundary on a missing package = %d, want 2", code)
	}
}
