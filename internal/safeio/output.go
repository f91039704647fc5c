package safeio

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/skipgraph/skipgraph/errs"
)

// Output is a file or folder a command is about to write. Check applies the one rule of every
// command: an input is never written over or deleted, and an existing path is replaced only when
// it is something skipgraph itself wrote there (a bundle, a run, an export ...), recognised by
// Ours.
type Output struct {
	// Path is the file or folder to write.
	Path string
	// What names what is written, with its article, for messages: "a bundle", "a training run".
	What string
	// Inputs are the files and folders the command reads. Path may be none of them and may hold
	// none of them.
	Inputs []string
	// Force is the command's --force: replace an existing Path that Ours recognises.
	Force bool
	// Replace says that the command replaces what Ours recognises without --force (the command
	// has no --force, such as the confusion matrix of eval).
	Replace bool
	// Ours returns nil when the existing path is a What that skipgraph wrote, else why not. Nil
	// Ours recognises nothing.
	Ours func(path string) error
}

// Check refuses, with one line that names the path (an input error), to write where the rule
// above forbids. It returns nil when Path does not exist or may be replaced.
func (o Output) Check() error {
	if err := o.CheckInputs(); err != nil {
		return err
	}
	if _, err := os.Lstat(o.Path); errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return errs.Input("%s: %w", o.Path, PathCause(err))
	}
	var why error = errors.New("nothing recognises it")
	if o.Ours != nil {
		why = o.Ours(o.Path)
	}
	switch {
	case why == nil && (o.Force || o.Replace):
		return nil
	case !o.Force && !o.Replace && why == nil:
		return errs.Input("%s already exists; remove it or pass --force to replace it", o.Path)
	case !o.Force && !o.Replace:
		return errs.Input("%s already exists and is not %s that skipgraph wrote; give another output path", o.Path, o.What)
	}
	return errs.Input("%s is not %s that skipgraph wrote (%w); skipgraph replaces only its own output: give another output path", o.Path, o.What, why)
}

// CheckInputs refuses an output path that is one of the inputs or holds one of them.
func (o Output) CheckInputs() error {
	out := resolve(o.Path)
	for _, in := range o.Inputs {
		if in == "" {
			continue
		}
		r := resolve(in)
		if r == out {
			return errs.Input("%s is an input of this command; writing %s there would replace it: give another output path", o.Path, o.What)
		}
		if within(out, r) {
			return errs.Input("%s holds the input %s; writing %s there would delete it: give another output path", o.Path, in, o.What)
		}
	}
	return nil
}

// resolve returns the absolute path with symbolic links resolved as far as the path exists.
func resolve(p string) string {
	abs, err := filepath.Abs(p)
	if err != nil {
		return filepath.Clean(p)
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		return r
	}
	parent := filepath.Dir(abs)
	if parent == abs {
		return abs
	}
	return filepath.Join(resolve(parent), filepath.Base(abs))
}

// within reports whether p lies strictly inside dir (both resolved).
func within(dir, p string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != "." && filepath.IsLocal(rel)
}

// PathCause drops the operation and path that an *os.PathError (*fs.PathError) repeats, for
// messages that name the path already: "model.onnx: no such file or directory". Other errors
// are returned as they are.
func PathCause(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Within returns the path of name inside dir when name, a relative path read from a file of
// dir (a manifest, an index), stays inside dir, symbolic links included. The error says how it
// leaves ("is an absolute path", "leaves the folder", ...) for the caller to name the file; a
// name that does not exist gives an error wrapping os.ErrNotExist, with the joined path.
func Within(dir, name string) (string, error) {
	switch {
	case name == "":
		return "", errors.New("is empty")
	case strings.ContainsRune(name, 0):
		return "", errors.New("contains a NUL byte")
	}
	local := filepath.FromSlash(name)
	if filepath.IsAbs(local) || strings.HasPrefix(name, "/") || strings.HasPrefix(name, `\`) || filepath.VolumeName(local) != "" {
		return "", errors.New("is an absolute path")
	}
	if !filepath.IsLocal(local) {
		return "", errors.New("leaves the folder")
	}
	full := filepath.Join(dir, local)
	rdir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return full, err
	}
	rfull, err := filepath.EvalSymlinks(full)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return full, fmt.Errorf("names a file that does not exist: %w", os.ErrNotExist)
		}
		return full, err
	}
	rel, err := filepath.Rel(rdir, rfull)
	if err != nil || !filepath.IsLocal(rel) {
		return "", errors.New("leaves the folder through a symbolic link")
	}
	return rfull, nil
}
