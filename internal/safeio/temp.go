package safeio

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// TempDir is a hidden folder beside a target folder, into which a command writes the target's
// new content before moving it into place. A lock file beside it (NAME.lock, flock-ed for as long
// as the writing process lives) tells a temporary folder that is still being written from one
// that a killed process left behind: CleanStale removes only the latter.
type TempDir struct {
	// Path is the temporary folder.
	Path   string
	target string
	lock   *os.File
}

const tempInfix, lockSuffix, oldSuffix = ".tmp-", ".lock", ".old"

// NewTempDir creates a temporary folder beside target (in target's parent, which is created when
// missing), after removing the stale ones that earlier, killed runs left for the same target.
func NewTempDir(target string) (*TempDir, error) {
	target = filepath.Clean(target)
	parent, base := filepath.Dir(target), filepath.Base(target)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, err
	}
	CleanStale(target)
	lock, err := os.CreateTemp(parent, "."+base+tempInfix+"*"+lockSuffix)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		lock.Close()
		os.Remove(lock.Name())
		return nil, err
	}
	fmt.Fprintf(lock, "skipgraph is writing %s (pid %d); a later run removes this when the process is gone\n", base, os.Getpid())
	t := &TempDir{Path: strings.TrimSuffix(lock.Name(), lockSuffix), target: target, lock: lock}
	if err := os.Mkdir(t.Path, 0o755); err != nil {
		t.unlock()
		return nil, err
	}
	return t, nil
}

// Commit moves the temporary folder into the target's place, replacing what was there.
func (t *TempDir) Commit() error {
	var old string
	if _, err := os.Lstat(t.target); err == nil {
		old = t.Path + oldSuffix
		if err := os.Rename(t.target, old); err != nil {
			return fmt.Errorf("cannot replace %s: %w", t.target, err)
		}
	}
	if err := os.Rename(t.Path, t.target); err != nil {
		if old != "" {
			os.Rename(old, t.target)
		}
		return fmt.Errorf("cannot move the new content into %s: %w", t.target, err)
	}
	if old != "" {
		os.RemoveAll(old)
	}
	t.unlock()
	return nil
}

// Abort removes the temporary folder (after a failure); after Commit it does nothing.
func (t *TempDir) Abort() {
	if t.lock == nil {
		return
	}
	os.RemoveAll(t.Path)
	t.unlock()
}

func (t *TempDir) unlock() {
	if t.lock != nil {
		os.Remove(t.lock.Name())
		t.lock.Close()
		t.lock = nil
	}
}

// CleanStale removes the temporary folders for target that processes which are gone left
// behind (see TempDir). A replaced target that such a process had moved aside, and not yet
// replaced, is moved back. Folders of live processes, and anything without a lock file, stay.
func CleanStale(target string) {
	target = filepath.Clean(target)
	parent, base := filepath.Dir(target), filepath.Base(target)
	locks, _ := filepath.Glob(filepath.Join(parent, "."+globEscape(base)+tempInfix+"*"+lockSuffix))
	for _, l := range locks {
		f, err := os.OpenFile(l, os.O_RDWR|syscall.O_NONBLOCK, 0)
		if err != nil {
			continue
		}
		if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
			f.Close()
			continue
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close() // held: its process is still writing
			continue
		}
		tmp := strings.TrimSuffix(l, lockSuffix)
		if old := tmp + oldSuffix; exists(old) {
			if exists(target) {
				os.RemoveAll(old)
			} else {
				os.Rename(old, target)
			}
		}
		os.RemoveAll(tmp)
		os.Remove(l)
		f.Close()
	}
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return !errors.Is(err, os.ErrNotExist)
}

// globEscape quotes the characters filepath.Match treats specially.
func globEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`)
	return r.Replace(s)
}
