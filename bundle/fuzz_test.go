package bundle

import (
	"os"
	"strings"
	"testing"
)

// FuzzManifest: no manifest makes the reader panic or answer with several lines, and one it
// accepts has every number within the bounds the readers rely on.
func FuzzManifest(f *testing.F) {
	seed, err := os.ReadFile("testdata/manifest_small.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	for _, edit := range [][2]string{
		{`"context_length": 16`, `"context_length": 1099511627776`},
		{`"image_size": 32`, `"image_size": -1`},
		{`"ratio": 0.5,`, `"ratio": 1e400,`},
		{`"format": "skipgraph-bundle/1"`, `"format": 7`},
	} {
		f.Add([]byte(strings.Replace(string(seed), edit[0], edit[1], 1)))
	}
	f.Add([]byte(`{"format": "skipgraph-bundle/1", "text": {"context_length": 0}}`))
	f.Add([]byte(`{"format": "skipgraph-bundle/1", "parameters": [{"shape": [4294967296, 4294967296, 4294967296]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest("manifest.json", b)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error has several lines: %v", err)
			}
			return
		}
		if m.Text != nil && (m.Text.ContextLength < 1 || m.Text.ContextLength > MaxContextLength) {
			t.Fatalf("accepted context length %d", m.Text.ContextLength)
		}
		if m.Vision != nil && (m.Vision.ImageSize < 1 || m.Vision.ImageSize > MaxImageSize) {
			t.Fatalf("accepted image size %d", m.Vision.ImageSize)
		}
		for _, p := range m.Parameters {
			n := int64(1)
			for _, d := range p.Shape {
				if d < 0 {
					t.Fatalf("accepted shape %v", p.Shape)
				}
				n *= d
			}
			if n > MaxParamElements || n < 0 {
				t.Fatalf("accepted shape %v", p.Shape)
			}
		}
		m.Trainable()
		m.Graph("train_step")
	})
}
