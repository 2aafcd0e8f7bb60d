package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The layout is a rule the README states too: its package map has exactly
// one row per package of `go list ./...`, in that order, so that a new
// package cannot land undescribed and a removed one cannot linger.
func TestTheREADMEPackageMapListsEveryPackageOnce(t *testing.T) {
	root := moduleRoot(t)
	cmd := exec.Command("go", "list", "./...")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list ./...: %v", err)
	}
	var want []string
	for _, p := range strings.Fields(string(out)) {
		want = append(want, strings.TrimPrefix(p, mod+"/"))
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	section := string(readme)
	i := strings.Index(section, "### Package map")
	if i < 0 {
		t.Fatal("README.md has no \"### Package map\" section")
	}
	section = section[i:]
	var got []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([^`]+)` \\| .+ \\|$").FindAllStringSubmatch(section, -1) {
		got = append(got, m[1])
	}
	if len(got) == 0 {
		t.Fatal("the package map has no rows")
	}
	if !slices.Equal(got, want) {
		for _, p := range want {
			if !slices.Contains(got, p) {
				t.Errorf("the package map lacks %s", p)
			}
		}
		for _, p := range got {
			if !slices.Contains(want, p) {
				t.Errorf("the package map lists %s, which go list does not", p)
			}
		}
		if !t.Failed() {
			t.Errorf("the package map is not in go list's order:\n got %v\nwant %v", got, want)
		}
	}
}
