package plugin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/skipgraph/skipgraph/errs"
)

// FilePrefix starts the file name of every plugin found in a folder: skipgraph-strategy-NAME,
// where NAME is the strategy it serves.
const FilePrefix = "skipgraph-strategy-"

// PathEnv names the environment variable holding plugin folders, separated by the system's list
// separator (a colon on Unix).
const PathEnv = "SKIPGRAPH_PLUGIN_PATH"

// DefaultDir returns the per-user plugin folder, os.UserConfigDir()/skipgraph/plugins.
func DefaultDir() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "skipgraph", "plugins"), nil
}

// Dirs returns the folders searched for plugins: the entries of $SKIPGRAPH_PLUGIN_PATH, then
// DefaultDir.
func Dirs() []string {
	var dirs []string
	for _, d := range filepath.SplitList(os.Getenv(PathEnv)) {
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	if d, err := DefaultDir(); err == nil {
		dirs = append(dirs, d)
	}
	return dirs
}

// Candidate is a plugin file found, not yet started.
type Candidate struct {
	// Path is the file's absolute path.
	Path string
	// Name is the strategy its file name announces (skipgraph-strategy-NAME), or "" for an
	// explicitly given file named otherwise.
	Name string
	// Explicit is true for a file given with --plugin (directly or through a folder).
	Explicit bool
}

// NameOf returns the strategy name a plugin file name announces, or "".
func NameOf(path string) string {
	base := filepath.Base(path)
	if runtime.GOOS == "windows" {
		base = strings.TrimSuffix(base, ".exe")
	}
	if !strings.HasPrefix(base, FilePrefix) || len(base) == len(FilePrefix) {
		return ""
	}
	return base[len(FilePrefix):]
}

// Find lists the plugin files: each explicit path (a plugin file, or a folder whose
// skipgraph-strategy-* files are taken), then the skipgraph-strategy-* files of dirs, in order,
// each file once. An explicit path that does not exist is an input error; a missing folder in
// dirs is skipped.
func Find(explicit, dirs []string) ([]Candidate, error) {
	var out []Candidate
	seen := map[string]bool{}
	add := func(path string, explicitFile bool, fromExplicit bool) {
		abs, err := filepath.Abs(path)
		if err != nil {
			abs = path
		}
		if seen[abs] {
			return
		}
		seen[abs] = true
		name := NameOf(abs)
		if name == "" && !explicitFile {
			return
		}
		out = append(out, Candidate{Path: abs, Name: name, Explicit: fromExplicit})
	}
	scan := func(dir string, fromExplicit bool) error {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		var names []string
		for _, e := range ents {
			if NameOf(e.Name()) == "" || e.IsDir() {
				continue
			}
			if runtime.GOOS != "windows" {
				info, err := os.Stat(filepath.Join(dir, e.Name()))
				if err != nil || !info.Mode().IsRegular() || info.Mode().Perm()&0o111 == 0 {
					continue
				}
			}
			names = append(names, e.Name())
		}
		sort.Strings(names)
		for _, n := range names {
			add(filepath.Join(dir, n), false, fromExplicit)
		}
		return nil
	}
	for _, p := range explicit {
		st, err := os.Stat(p)
		if err != nil {
			return nil, errs.Input("--plugin %s: no such file or folder", p)
		}
		if st.IsDir() {
			if err := scan(p, true); err != nil {
				return nil, errs.Input("--plugin %s: %w", p, err)
			}
			continue
		}
		add(p, true, true)
	}
	for _, d := range dirs {
		if err := scan(d, false); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, errs.Input("plugin folder %s: %w", d, err)
		}
	}
	return out, nil
}

// Catalog starts plugins on demand, by strategy name, and keeps them until Close.
type Catalog struct {
	// Options are used to open each plugin.
	Options    Options
	candidates []Candidate
	opened     map[string]*Plugin
	failed     map[string]error
}

// NewCatalog returns a catalog of the given candidates (see Find).
func NewCatalog(candidates []Candidate, opts Options) *Catalog {
	return &Catalog{Options: opts, candidates: candidates, opened: map[string]*Plugin{}, failed: map[string]error{}}
}

// Candidates returns the plugin files of the catalog.
func (c *Catalog) Candidates() []Candidate { return append([]Candidate(nil), c.candidates...) }

// open starts a candidate once; a failure is remembered.
func (c *Catalog) open(ctx context.Context, cand Candidate) (*Plugin, error) {
	if p := c.opened[cand.Path]; p != nil {
		return p, nil
	}
	if err := c.failed[cand.Path]; err != nil {
		return nil, err
	}
	p, err := Open(ctx, cand.Path, c.Options)
	if err == nil && cand.Name != "" && p.Info().Name != cand.Name {
		served := p.Info().Name
		p.Close()
		p, err = nil, errs.Input("plugin %s is named for strategy %q but serves %q; rename the file %s%s", cand.Path, cand.Name, served, FilePrefix, served)
	}
	if err != nil {
		c.failed[cand.Path] = err
		return nil, err
	}
	c.opened[cand.Path] = p
	return p, nil
}

// Lookup returns the plugin serving the named strategy among the explicit candidates (explicit
// true) or the ones found in folders (false), starting only those it must: files named for the
// strategy, and (explicit only) files whose names announce no strategy. It returns nil and no
// error when none serves it; a plugin that fails to start is an error.
func (c *Catalog) Lookup(ctx context.Context, name string, explicit bool) (*Plugin, error) {
	for _, cand := range c.candidates {
		if cand.Explicit == explicit && cand.Name == name {
			return c.open(ctx, cand)
		}
	}
	if !explicit {
		return nil, nil
	}
	for _, cand := range c.candidates {
		if cand.Explicit && cand.Name == "" {
			p, err := c.open(ctx, cand)
			if err != nil {
				return nil, err
			}
			if p.Info().Name == name {
				return p, nil
			}
		}
	}
	return nil, nil
}

// Entry is one plugin of the catalog, started: Plugin when it works, Err when it does not.
type Entry struct {
	Candidate
	Plugin *Plugin
	Err    error
}

// All starts every plugin and returns one entry each; a broken plugin has Err set and does not
// stop the others.
func (c *Catalog) All(ctx context.Context) []Entry {
	out := make([]Entry, 0, len(c.candidates))
	for _, cand := range c.candidates {
		p, err := c.open(ctx, cand)
		out = append(out, Entry{Candidate: cand, Plugin: p, Err: err})
	}
	return out
}

// Close stops every plugin the catalog started.
func (c *Catalog) Close() {
	for path, p := range c.opened {
		p.Close()
		delete(c.opened, path)
	}
}

// String describes a candidate for messages.
func (c Candidate) String() string {
	if c.Name == "" {
		return c.Path
	}
	return fmt.Sprintf("%s (%s)", c.Name, c.Path)
}
