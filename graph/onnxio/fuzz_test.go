package onnxio_test

import (
	"testing"

	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/graph/onnxio"
	"github.com/skipgraph/skipgraph/graph/onnxio/internal/testmodel"
)

// FuzzDecode checks that no input makes Decode panic, that every refusal is an input error, and
// that whatever decodes also encodes and decodes again.
func FuzzDecode(f *testing.F) {
	if fix := fixtureBytes(f); fix != nil {
		f.Add(fix)
	}
	small, err := onnxio.Encode(testmodel.Small(1))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(small)
	for _, tc := range garbage(f) {
		if len(tc.data) < 1<<16 {
			f.Add(tc.data)
		}
	}
	f.Add(reluModel(f, externalTensor("w", "w.bin", 4)))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := onnxio.Decode(data, dir)
		if err != nil {
			if !errs.IsInput(err) {
				t.Fatalf("refusal is not an input error: %v", err)
			}
			return
		}
		b, err := onnxio.Encode(m)
		if err != nil {
			// The IR cannot build some records from scratch (a string tensor); that is no panic.
			return
		}
		if _, err := onnxio.Decode(b, dir); err != nil {
			t.Fatalf("decoded, encoded, but the encoding does not decode: %v", err)
		}
	})
}
