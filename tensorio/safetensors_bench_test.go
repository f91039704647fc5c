package tensorio

import (
	"fmt"
	"path/filepath"
	"testing"
)

// BenchmarkSafetensors saves and loads 64 MiB of float32 parameters in 64 tensors (one ViT-B
// layer is about 28 MiB) through a file.
func BenchmarkSafetensors(b *testing.B) {
	ts := map[string]*Tensor{}
	for i := range 64 {
		t, _ := New(Float32, 512, 512)
		for j := range t.Float32s() {
			t.Float32s()[j] = float32(i*j) * 1e-6
		}
		ts[fmt.Sprintf("layers.%d.weight", i)] = t
	}
	path := filepath.Join(b.TempDir(), "params.safetensors")
	b.Run("save", func(b *testing.B) {
		b.SetBytes(64 << 20)
		for range b.N {
			if err := SaveSafetensors(path, ts, map[string]string{"format": "pt"}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("load", func(b *testing.B) {
		b.SetBytes(64 << 20)
		for range b.N {
			if _, err := LoadSafetensors(path); err != nil {
				b.Fatal(err)
			}
		}
	})
}
