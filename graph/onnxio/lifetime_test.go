package onnxio_test

import (
	"hash/crc32"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/skipgraph/skipgraph/graph/onnxio"
	"github.com/skipgraph/skipgraph/graph/onnxio/internal/testmodel"
)

// gcWriter checksums what it is given and runs the garbage collector (and its cleanups) on
// every write.
type gcWriter struct{ sum uint32 }

func (w *gcWriter) Write(p []byte) (int, error) {
	w.sum = crc32.Update(w.sum, crc32.IEEETable, p)
	runtime.GC()
	time.Sleep(time.Millisecond)
	return len(p), nil
}

// TestWriteWhileCollecting writes a loaded model that nothing else refers to while the garbage
// collector runs: the mappings must stay until the last byte is written.
func TestWriteWhileCollecting(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 40 MB model")
	}
	src := filepath.Join(t.TempDir(), "m.onnx")
	if err := onnxio.Save(testmodel.Big(40, 2), src, onnxio.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	m, err := onnxio.Load(src)
	if err != nil {
		t.Fatal(err)
	}
	w := &gcWriter{}
	if err := onnxio.Write(w, m); err != nil {
		t.Fatal(err)
	}
	if w.sum != crc32.ChecksumIEEE(want) {
		t.Fatal("the written model differs from the file")
	}
}
