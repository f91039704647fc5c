package plugin_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/skipgraph/skipgraph/internal/testenv"
	"github.com/skipgraph/skipgraph/plugin"
)

// binDir holds the plugin binaries, built once per test binary by bins.
var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

// misbehaviours are the modes of testdata/misbehave, each a copy named skipgraph-strategy-MODE.
var misbehaviours = []string{"crash", "hang", "hangstart", "exit", "malformed", "badpatch", "cycle", "v2", "tensors"}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	plugin.KillAll()
	os.Exit(code)
}

// bins builds the built-ins' plugin mains, the misbehaving test plugin, and the example plugin
// (from its own folder, as its author would), once, and returns the folder holding them.
func bins(t testing.TB) string {
	t.Helper()
	root := testenv.RepoRoot(t)
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "skipgraph-plugins-"); binErr != nil {
			return
		}
		run := func(dir string, args ...string) error {
			cmd := exec.Command("go", args...)
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("go %v in %s: %v\n%s", args, dir, err, out)
			}
			return nil
		}
		var wg sync.WaitGroup
		var errA, errB error
		wg.Add(2)
		go func() {
			defer wg.Done()
			errA = run(root, "build", "-o", binDir+string(filepath.Separator),
				"./plugins/lskip/cmd/skipgraph-strategy-lskip", "./plugins/cskip/cmd/skipgraph-strategy-cskip", "./plugin/testdata/misbehave")
		}()
		go func() {
			defer wg.Done()
			errB = run(filepath.Join(root, "examples", "attnonly"), "build", "-o", filepath.Join(binDir, "skipgraph-strategy-attnonly"), ".")
		}()
		wg.Wait()
		if binErr = firstErr(errA, errB); binErr != nil {
			return
		}
		for _, mode := range misbehaviours {
			if binErr = os.Link(filepath.Join(binDir, "misbehave"), bin(mode)); binErr != nil {
				return
			}
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binDir
}

func bin(name string) string { return filepath.Join(binDir, plugin.FilePrefix+name) }

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
