package onnxio_test

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/skipgraph/skipgraph/graph/onnxio"
	"github.com/skipgraph/skipgraph/graph/onnxio/internal/testmodel"
)

// BenchmarkRoundTrip600MB measures Load+Save of a model with about 600 MB of random weights
// against a plain copy (with sync) of the same file, and reports both and their ratio. Peak
// memory of a round trip is measured in a fresh process by internal/roundtrip.
func BenchmarkRoundTrip600MB(b *testing.B) {
	if testing.Short() {
		b.Skip("writes 1.8 GB of temporary files")
	}
	dir := b.TempDir()
	src := filepath.Join(dir, "big.onnx")
	if err := onnxio.Save(testmodel.Big(600, 1), src, onnxio.SaveOptions{}); err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	st, err := os.Stat(src)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(st.Size())
	var copyTime, rtTime time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if err := testmodel.CopyFile(src, filepath.Join(dir, "copy.onnx")); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		m, err := onnxio.Load(src)
		if err != nil {
			b.Fatal(err)
		}
		if err := onnxio.Save(m, filepath.Join(dir, "out.onnx"), onnxio.SaveOptions{}); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		copyTime += t1.Sub(t0)
		rtTime += t2.Sub(t1)
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64(copyTime.Milliseconds())/n, "copy-ms/op")
	b.ReportMetric(float64(rtTime.Milliseconds())/n, "roundtrip-ms/op")
	b.ReportMetric(rtTime.Seconds()/copyTime.Seconds(), "roundtrip/copy")
}
