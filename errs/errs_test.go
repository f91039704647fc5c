package errs

import (
	"errors"
	"io/fs"
	"testing"
)

func TestPath(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/data/a b/c.png", "/data/a b/c.png"},
		{"/data/caf\u00e9.png", "/data/caf\u00e9.png"},
		{"/data/line\nbreak.png", `"/data/line\nbreak.png"`},
		{"/data/tab\t.png", `"/data/tab\t.png"`},
	} {
		if got := Path(tc.in); got != tc.want {
			t.Errorf("Path(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestWrap(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cause     error
		msg       string
		wantInput bool
	}{
		{"plain cause", fs.ErrNotExist, "a.json: no such file", false},
		{"input cause", Input("bad value: %w", fs.ErrNotExist), "reworded: bad value", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Wrap(tc.cause, "%s", tc.msg)
			if err.Error() != tc.msg {
				t.Errorf("message %q, want %q", err.Error(), tc.msg)
			}
			if !errors.Is(err, fs.ErrNotExist) {
				t.Error("the cause is not found by errors.Is")
			}
			if IsInput(err) != tc.wantInput {
				t.Errorf("IsInput %v, want %v", IsInput(err), tc.wantInput)
			}
		})
	}
}
