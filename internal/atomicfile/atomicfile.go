// Package atomicfile writes files that a reader (or a crash) sees whole or not at all.
package atomicfile

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
)

// Write writes b to path through a temporary file in the same folder, synced and renamed into
// place (mode 0644), so a reader sees the old file or the whole new one.
func Write(path string, b []byte) error {
	return WriteFrom(path, 0o644, func(w io.Writer) error { _, err := w.Write(b); return err })
}

// WriteFrom writes path's content with fill into a temporary file in the same folder (named
// .tmp-NAME-*), syncs it, gives it mode and renames it into place. On any error the temporary
// file is removed and path is left as it was.
func WriteFrom(path string, mode os.FileMode, fill func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-")
	if err != nil {
		return err
	}
	tmp := f.Name()
	werr := fill(f)
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(tmp, mode)
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		os.Remove(tmp)
	}
	return werr
}

// WriteJSON writes v as indented JSON with a final newline, as Write does.
func WriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return Write(path, append(b, '\n'))
}
