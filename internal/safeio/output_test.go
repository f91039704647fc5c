package safeio

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPathCause(t *testing.T) {
	_, missing := os.Open(filepath.Join(t.TempDir(), "nope"))
	plain := errors.New("plain")
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"path error", missing, fs.ErrNotExist},
		{"wrapped path error", fmt.Errorf("reading: %w", missing), fs.ErrNotExist},
		{"other", plain, plain},
		{"nil", nil, nil},
	} {
		got := PathCause(tc.err)
		if got != tc.want && !errors.Is(got, tc.want) || (tc.want != nil && strings.Contains(got.Error(), "nope")) {
			t.Errorf("%s: PathCause = %v, want %v without the path", tc.name, got, tc.want)
		}
	}
}
