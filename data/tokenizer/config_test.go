package tokenizer

import (
	"path/filepath"
	"slices"
	"testing"
)

// TestConfigFilesNamed: a tokenizer says which configuration files beside it it read.
func TestConfigFilesNamed(t *testing.T) {
	for _, c := range []struct {
		dir  string
		want []string
	}{
		{"hf_json", []string{HFConfigFile}},
		{"hf_slow", []string{HFConfigFile, HFSpecialTokensFile}},
		{"openai", nil},
	} {
		tok, err := Load(filepath.Join("testdata", c.dir))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, f := range tok.Config {
			got = append(got, filepath.Base(f))
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: config files %v, want %v", c.dir, got, c.want)
		}
	}
}
