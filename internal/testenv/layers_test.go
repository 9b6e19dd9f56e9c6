package testenv

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/railyard/railyard"

// floor is a package's place in the house: each floor imports only the
// floors below it, and internal/ (test support: emulators, the sample,
// this package) sits beside schemas at the bottom.
func floor(pkg string) (int, bool) {
	rel := strings.TrimPrefix(pkg, module+"/")
	for i, top := range []string{"schemas", "transforms", "pipelines", "runners"} {
		if rel == top || strings.HasPrefix(rel, top+"/") {
			return i, true
		}
	}
	return 0, false
}

func isInternal(pkg string) bool { return strings.HasPrefix(pkg, module+"/internal/") }

type listed struct {
	ImportPath                         string
	Imports, TestImports, XTestImports []string
}

// TestNoImportGoesUpTheHouse holds the dependency picture for code and
// tests alike: schemas ← transforms ← pipelines ← runners, no arrow back
// up; internal/ is test support that only tests and runners import (so
// no pipeline binary links an emulator), and that imports nothing above
// schemas.
func TestNoImportGoesUpTheHouse(t *testing.T) {
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports,TestImports,XTestImports", module+"/...")
	cmd.Dir = Path(t)
	out, err := cmd.Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			t.Fatalf("go list: %v\n%s", err, exit.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	seen := 0
	for {
		var p listed
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		seen++
		check := func(imports []string, test bool) {
			for _, imp := range imports {
				if !strings.HasPrefix(imp, module+"/") || imp == p.ImportPath {
					continue
				}
				if problem := arrow(p.ImportPath, imp, test); problem != "" {
					kind := "imports"
					if test {
						kind = "tests import"
					}
					t.Errorf("%s %s %s: %s", strings.TrimPrefix(p.ImportPath, module+"/"), kind, strings.TrimPrefix(imp, module+"/"), problem)
				}
			}
		}
		check(p.Imports, false)
		check(p.TestImports, true)
		check(p.XTestImports, true)
	}
	if seen < 20 {
		t.Fatalf("go list named %d packages; the module has more", seen)
	}
}

// arrow says what is wrong with from importing to, or "".
func arrow(from, to string, test bool) string {
	if isInternal(from) {
		if isInternal(to) {
			return ""
		}
		if f, ok := floor(to); ok && f == 0 {
			return ""
		}
		return "internal/ may import only schemas and internal/"
	}
	ff, ok := floor(from)
	if !ok {
		return "a package outside schemas, transforms, pipelines, runners and internal"
	}
	if isInternal(to) {
		if test || ff == 3 {
			return ""
		}
		return "only tests and runners may import test support"
	}
	tf, ok := floor(to)
	if !ok {
		return "a package outside schemas, transforms, pipelines, runners and internal"
	}
	if tf > ff {
		return "an arrow back up the house"
	}
	return ""
}

func TestArrowRules(t *testing.T) {
	for _, tc := range []struct {
		from, to string
		test     bool
		bad      bool
	}{
		{"transforms/lake", "schemas", false, false},
		{"pipelines/streaming/streamjob", "transforms/lake", false, false},
		{"transforms/lake", "pipelines/config", false, true},
		{"transforms/lake", "runners/local", true, true},
		{"transforms/lake", "internal/emulators", true, false},
		{"transforms/lake", "internal/emulators", false, true},
		{"pipelines/batch", "internal/sample", false, true},
		{"runners/local", "internal/emulators", false, false},
		{"internal/sample", "schemas", false, false},
		{"internal/sample", "transforms/sessions", false, true},
	} {
		got := arrow(module+"/"+tc.from, module+"/"+tc.to, tc.test)
		if (got != "") != tc.bad {
			t.Errorf("%s -> %s (test %v): %q, want bad=%v", tc.from, tc.to, tc.test, got, tc.bad)
		}
	}
}
