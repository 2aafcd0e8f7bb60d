package main

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The asset is the bootstrap's bytes: the same source must give the same
// bytes whatever the checkout, or every commit would change the asset hash
// and redeploy unchanged code. The test builds each function (the rotator,
// the Flows endpoint) with the Makefile's own command (make -n) in two
// copies of the source, each its own git repository with a different
// commit, one with an uncommitted file, and compares. In a git checkout Go
// stamps the revision and the dirty flag; -buildvcs=false is what keeps
// them out.
func TestTheBuildIsReproducible(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{".build/arm64/rotator/bootstrap", ".build/arm64/endpoint/bootstrap"} {
		t.Run(filepath.Base(filepath.Dir(target)), func(t *testing.T) { assertReproducible(t, root, target) })
	}
}

func assertReproducible(t *testing.T, root, target string) {
	out, err := exec.Command("make", "-C", root, "-s", "-n", "-B", target).Output()
	if err != nil {
		t.Fatalf("make -n %s: %v", target, err)
	}
	build := strings.TrimSpace(string(out))
	for _, flag := range []string{"-trimpath", "-buildvcs=false", " -o " + target + " "} {
		if !strings.Contains(build, flag) {
			t.Fatalf("the Makefile builds the bootstrap with %q, which lacks %q", build, flag)
		}
	}

	var bootstraps [][]byte
	for i, change := range []func(dir string){
		func(string) {},
		func(dir string) {
			// An uncommitted file: Go would stamp vcs.modified=true.
			if err := os.WriteFile(filepath.Join(dir, "NOTES.txt"), []byte("local change\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		},
	} {
		dir := t.TempDir()
		copySource(t, root, dir)
		git(t, dir, "init", "-q")
		git(t, dir, "add", ".")
		git(t, dir, "-c", "user.name=flowkey test", "-c", "user.email=test@example.com", "commit", "-q",
			"-m", "checkout "+string(rune('a'+i)), "--date", "2026-0"+string(rune('1'+i))+"-01T00:00:00Z")
		change(dir)
		cmd := exec.Command("bash", "-c", build)
		cmd.Dir = dir
		// Go's default, whatever this machine's go env says: a developer's
		// checkout stamps unless the command says otherwise.
		cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=auto", "GOWORK=off", "GOTOOLCHAIN=local")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s in %s: %v\n%s", build, dir, err, out)
		}
		b, err := os.ReadFile(filepath.Join(dir, target))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte("vcs.revision")) || bytes.Contains(b, []byte("vcs.modified")) {
			t.Errorf("build %d carries VCS information", i)
		}
		bootstraps = append(bootstraps, b)
	}
	if !bytes.Equal(bootstraps[0], bootstraps[1]) {
		t.Errorf("two builds of the same source differ (%d and %d bytes): the asset hash would change with every commit", len(bootstraps[0]), len(bootstraps[1]))
	}
}

// copySource copies what the functions are built from: the module files,
// functions/ and internal/, without tests.
func copySource(t *testing.T, from, to string) {
	t.Helper()
	for _, f := range []string{"go.mod", "go.sum"} {
		copyFile(t, filepath.Join(from, f), filepath.Join(to, f))
	}
	for _, dir := range []string{"functions", "internal"} {
		err := filepath.WalkDir(filepath.Join(from, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			rel, err := filepath.Rel(from, path)
			if err != nil {
				return err
			}
			copyFile(t, path, filepath.Join(to, rel))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func git(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// make deploy passes CDK_APPROVAL and CDK_FLAGS to the CLI, so that a
// deploy without a terminal (CI) can say never, pick a profile and give
// settings as context; on a terminal it still asks before IAM widens.
func TestDeployPassesCDKFlags(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "cdk deploy --no-notices --require-approval broadening"},
		{[]string{"CDK_APPROVAL=never", "CDK_FLAGS=--profile ci -c flowkey:terminationProtection=true"},
			"cdk deploy --no-notices --require-approval never --profile ci -c flowkey:terminationProtection=true"},
	} {
		out, err := exec.Command("make", append([]string{"-C", root, "-s", "-n", "-B", "deploy"}, tc.args...)...).Output()
		if err != nil {
			t.Fatalf("make -n deploy %v: %v", tc.args, err)
		}
		if !strings.Contains(string(out), tc.want) {
			t.Errorf("make -n deploy %v runs\n%s\nwant a line with %q", tc.args, out, tc.want)
		}
	}
	out, err := exec.Command("make", "-C", root, "-s", "-n", "-B", "synth", "CDK_FLAGS=-c flowkey:vpcEndpoints=true").Output()
	if err != nil || !strings.Contains(string(out), "cdk synth --ci --no-notices --quiet --output cdk.out -c flowkey:vpcEndpoints=true") {
		t.Errorf("make -n synth with CDK_FLAGS: %v\n%s", err, out)
	}
}
