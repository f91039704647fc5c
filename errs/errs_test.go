package errs

import "testing"

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
