package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/internal/testenv"
	"github.com/skipgraph/skipgraph/plugin"
	_ "github.com/skipgraph/skipgraph/plugins/cskip"
	_ "github.com/skipgraph/skipgraph/plugins/full"
	_ "github.com/skipgraph/skipgraph/plugins/lskip"
)

// TestStrategyCLI covers --strategy/--set/--plugin resolution and 'skipgraph strategies' with a
// plugin binary (the LSkip main, built once here), a broken plugin found on
// $SKIPGRAPH_PLUGIN_PATH, and the built-ins.
func TestStrategyCLI(t *testing.T) {
	dir := t.TempDir()
	lskipBin := filepath.Join(dir, "skipgraph-strategy-lskip")
	build := exec.Command("go", "build", "-o", lskipBin, "./plugins/lskip/cmd/skipgraph-strategy-lskip")
	build.Dir = testenv.RepoRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the LSkip plugin: %v\n%s", err, out)
	}
	envDir := filepath.Join(dir, "env")
	os.Mkdir(envDir, 0o755)
	broken := filepath.Join(envDir, "skipgraph-strategy-broken")
	if err := os.WriteFile(broken, []byte("#!/bin/sh\necho 'cannot start: missing libfoo' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(plugin.PathEnv, envDir)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	t.Setenv("HOME", dir)

	t.Run("specs", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			args []string
			want map[string]map[string]string // strategy -> args, in --strategy order by name
			from string                       // "plugin" when the first strategy must be the plugin
			err  string
		}{
			{"default", nil, map[string]map[string]string{"lskip": {}}, "", ""},
			{"flags", []string{"--strategy", "lskip,cskip", "--lskip-start", "3", "--cskip-ratio", "0.25"},
				map[string]map[string]string{"lskip": {"start": "3"}, "cskip": {"ratio": "0.25"}}, "", ""},
			{"set", []string{"--strategy", "lskip , cskip", "--set", "lskip.start=4", "--set", "cskip.seed=9"},
				map[string]map[string]string{"lskip": {"start": "4"}, "cskip": {"seed": "9"}}, "", ""},
			{"flag and same set", []string{"--lskip-start", "2", "--set", "lskip.start=2"}, map[string]map[string]string{"lskip": {"start": "2"}}, "", ""},
			{"flag and other set", []string{"--lskip-start", "2", "--set", "lskip.start=3"}, nil, "", `already set to "2"`},
			{"flag of unselected", []string{"--strategy", "full", "--lskip-start", "3"}, nil, "", "--lskip-start is set, but lskip is not in --strategy full"},
			{"set of unselected", []string{"--set", "cskip.ratio=0.5"}, nil, "", "cskip is not in --strategy lskip"},
			{"set malformed", []string{"--set", "lskip-start=3"}, nil, "", "want strategy.param=value"},
			{"set unknown param", []string{"--set", "lskip.omega=3"}, nil, "", `strategy lskip has no parameter "omega"`},
			{"set bad value", []string{"--strategy", "cskip", "--set", "cskip.max=many"}, nil, "", `max="many" is not a valid int`},
			{"unknown", []string{"--strategy", "lskip,nosuch"}, nil, "", `unknown strategy "nosuch" (known: broken, cskip, full, lskip;`},
			{"twice", []string{"--strategy", "lskip,lskip"}, nil, "", "lskip is given twice"},
			{"empty", []string{"--strategy", " , "}, nil, "", "--strategy is empty"},
			{"explicit plugin shadows", []string{"--plugin", lskipBin, "--lskip-start", "1"}, map[string]map[string]string{"lskip": {"start": "1"}}, "plugin", ""},
			{"plugin folder", []string{"--plugin", dir, "--set", "lskip.start=1"}, map[string]map[string]string{"lskip": {"start": "1"}}, "plugin", ""},
			{"broken", []string{"--strategy", "broken"}, nil, "", "skipgraph-strategy-broken exited before the handshake (cannot start: missing libfoo)"},
			{"missing plugin", []string{"--plugin", filepath.Join(dir, "nope")}, nil, "", "no such file or folder"},
			{"bad timeout", []string{"--plugin-timeout", "0s"}, nil, "", "--plugin-timeout must be positive"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				fs := flag.NewFlagSet("test", flag.ContinueOnError)
				fs.SetOutput(io.Discard)
				sf := addStrategyFlags(fs, "lskip")
				if err := fs.Parse(tc.args); err != nil {
					t.Fatal(err)
				}
				specs, done, err := sf.specs(context.Background())
				if tc.err != "" {
					if err == nil || !strings.Contains(err.Error(), tc.err) || !errs.IsInput(err) || strings.Contains(err.Error(), "\n") {
						t.Fatalf("error %v, want an input error saying %q", err, tc.err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				defer done()
				got := map[string]map[string]string{}
				for _, sp := range specs {
					got[sp.Strategy.Info().Name] = sp.Args
				}
				if !reflect.DeepEqual(got, tc.want) {
					t.Errorf("specs %v, want %v", got, tc.want)
				}
				if _, isPlugin := specs[0].Strategy.(*plugin.Plugin); isPlugin != (tc.from == "plugin") {
					t.Errorf("first strategy is %T", specs[0].Strategy)
				}
			})
		}
	})

	t.Run("bad flag value", func(t *testing.T) {
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		addStrategyFlags(fs, "lskip")
		if err := fs.Parse([]string{"--cskip-ratio", "half"}); err == nil || !strings.Contains(err.Error(), "not a valid float") {
			t.Fatalf("parse error %v", err)
		}
	})

	t.Run("strategies", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		if code := run([]string{"strategies", "--json", "--plugin", lskipBin}, &stdout, &stderr); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
		var list strategyList
		if err := json.Unmarshal(stdout.Bytes(), &list); err != nil {
			t.Fatal(err)
		}
		byKey := map[string]strategyEntry{}
		for _, e := range list.Strategies {
			byKey[e.Source+":"+e.Name] = e
		}
		for _, key := range []string{"built-in:full", "built-in:lskip", "built-in:cskip", "plugin:lskip", "plugin:broken"} {
			if _, ok := byKey[key]; !ok {
				t.Errorf("%s is not listed", key)
			}
		}
		if e := byKey["plugin:lskip"]; e.Path != lskipBin || e.Protocol != plugin.ProtocolVersion || len(e.Params) != 3 || e.Params[0].Flag != "--set lskip.start=STRING" {
			t.Errorf("plugin entry %+v", e)
		}
		if e := byKey["built-in:lskip"]; e.ShadowedBy != lskipBin || e.Params[0].Flag != "--lskip-start STRING" {
			t.Errorf("built-in entry %+v", e)
		}
		if e := byKey["plugin:broken"]; !strings.Contains(e.Error, "missing libfoo") {
			t.Errorf("broken entry %+v", e)
		}

		stdout.Reset()
		if code := run([]string{"strategies"}, &stdout, &stderr); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
		if !strings.Contains(stdout.String(), "BROKEN: plugin "+broken) || !strings.Contains(stdout.String(), "--cskip-ratio FLOAT") {
			t.Errorf("listing:\n%s", stdout.String())
		}
	})
}
