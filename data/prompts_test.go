package data

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestDisplayName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"red_circle", "red circle"},
		{"golden_retriever", "golden retriever"},
		{"__odd__name_", "odd name"},
		{"Plain", "Plain"},
	}
	for _, tt := range tests {
		if got := DisplayName(tt.in); got != tt.want {
			t.Errorf("DisplayName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestResolveTemplates(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.txt")
	os.WriteFile(good, []byte("# CLIP templates\na photo of a {}.\n\n  a sketch of the {}.  \nitap of a {}.\n"), 0o644)
	bad := filepath.Join(dir, "bad.txt")
	os.WriteFile(bad, []byte("a photo of a {}.\nno placeholder\n"), 0o644)
	empty := filepath.Join(dir, "empty.txt")
	os.WriteFile(empty, []byte("# nothing\n\n"), 0o644)
	tests := []struct {
		name, template, file string
		want                 []string
		err                  string
	}{
		{"default", "", "", []string{"a photo of a {}."}, ""},
		{"single", "art of the {}", "", []string{"art of the {}"}, ""},
		{"single without placeholder", "a photo", "", nil, "no {}"},
		{"file", "", good, []string{"a photo of a {}.", "a sketch of the {}.", "itap of a {}."}, ""},
		{"bad line", "", bad, nil, "line 2"},
		{"empty file", "", empty, nil, "no templates"},
		{"missing file", "", filepath.Join(dir, "nope.txt"), nil, "nope.txt"},
		{"both", "a {}", good, nil, "use one"},
	}
	for _, tt := range tests {
		got, err := ResolveTemplates(tt.template, tt.file)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: err %v, want %q", tt.name, err, tt.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("%s: %q %v, want %q", tt.name, got, err, tt.want)
		}
	}
}

func TestPrompts(t *testing.T) {
	got := Prompts([]string{"a photo of a {}.", "{} and {}"}, []string{"red circle", "dog"})
	want := [][]string{{"a photo of a red circle.", "red circle and red circle"}, {"a photo of a dog.", "dog and dog"}}
	for i := range want {
		if !slices.Equal(got[i], want[i]) {
			t.Errorf("class %d: %q, want %q", i, got[i], want[i])
		}
	}
}

func TestReadClasses(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "classes.txt")
	os.WriteFile(path, []byte("\ufeffred_circle\nn01440764 tench\nfolder with space\tNice Name\n# comment\n\n"), 0o644)
	got, err := ReadClasses(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []ClassEntry{{"red_circle", "red circle"}, {"n01440764", "tench"}, {"folder with space", "Nice Name"}}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	os.WriteFile(path, []byte("a\nb\na\n"), 0o644)
	if _, err := ReadClasses(path); err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("duplicate: %v", err)
	}
}
