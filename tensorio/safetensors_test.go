package tensorio

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// referenceTensors are the tensors of testdata/reference.safetensors (see
// testdata/make_safetensors_fixture.py, which writes that file from the format's description).
func referenceTensors() map[string]*Tensor {
	return map[string]*Tensor{
		"text_model.final_layer_norm.weight": {DType: Float32, Shape: []int64{4}, Data: []float32{1, -2.5, 0.125, 3e-8}},
		"logit_scale":                        {DType: Float32, Shape: []int64{}, Data: []float32{4.6052}},
		"visual.proj":                        {DType: Float16, Shape: []int64{2, 3}, Data: []uint16{0x3c00, 0xc000, 0x0001, 0x7bff, 0, 0x8000}},
		"position_ids":                       {DType: Int64, Shape: []int64{1, 3}, Data: []int64{0, 1, -(1 << 40)}},
		"mask":                               {DType: Bool, Shape: []int64{2, 2}, Data: []bool{true, false, false, true}},
		"pixel_values":                       {DType: Uint8, Shape: []int64{3}, Data: []uint8{0, 128, 255}},
		"empty":                              {DType: Float32, Shape: []int64{0, 3}, Data: []float32{}},
	}
}

func TestSafetensorsMatchesReferenceBytes(t *testing.T) {
	want, err := os.ReadFile(filepath.Join("testdata", "reference.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteSafetensors(&buf, referenceTensors(), map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("written file differs from the reference:\n got %q\nwant %q", buf.Bytes(), want)
	}
}

func TestSafetensorsReadsReference(t *testing.T) {
	s, err := LoadSafetensors(filepath.Join("testdata", "reference.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s.Metadata, map[string]string{"format": "pt"}) {
		t.Errorf("metadata = %v", s.Metadata)
	}
	want := referenceTensors()
	if len(s.Tensors) != len(want) {
		t.Fatalf("got %d tensors, want %d", len(s.Tensors), len(want))
	}
	for name, w := range want {
		g := s.Tensors[name]
		if g == nil {
			t.Errorf("tensor %q missing", name)
			continue
		}
		if g.DType != w.DType || !SameShape(g.Shape, w.Shape) || !reflect.DeepEqual(g.Data, w.Data) {
			t.Errorf("tensor %q = %v %v %v, want %v %v %v", name, g.DType, g.Shape, g.Data, w.DType, w.Shape, w.Data)
		}
	}
}

func TestSafetensorsRoundTrip(t *testing.T) {
	ts := sampleTensors()
	ts["bf16 2"] = &Tensor{DType: BFloat16, Shape: []int64{2}, Data: []uint16{0x3f80, 0xc000}}
	for _, meta := range []map[string]string{nil, {}, {"a\"b\\c\n": "é ✓", "step": "12"}} {
		var buf bytes.Buffer
		if err := WriteSafetensors(&buf, ts, meta); err != nil {
			t.Fatal(err)
		}
		if n := binary.LittleEndian.Uint64(buf.Bytes()); n%8 != 0 {
			t.Errorf("header length %d is not a multiple of 8", n)
		}
		s, err := ReadSafetensors(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if len(meta) > 0 && !reflect.DeepEqual(s.Metadata, meta) {
			t.Errorf("metadata = %q, want %q", s.Metadata, meta)
		}
		for name, w := range ts {
			g := s.Tensors[name]
			if g == nil || g.DType != w.DType || !SameShape(g.Shape, w.Shape) || !reflect.DeepEqual(g.Data, w.Data) {
				t.Errorf("tensor %q = %v, want %v", name, g, w)
			}
		}
	}
}

func TestSafetensorsRejects(t *testing.T) {
	ref, err := os.ReadFile(filepath.Join("testdata", "reference.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	hdr := func(h string, data int) []byte {
		b := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
		return append(append(b, h...), make([]byte, data)...)
	}
	cases := []struct {
		name, in, want string
	}{
		{"empty file", "", "header length"},
		{"huge header", string(binary.LittleEndian.AppendUint64(nil, 1<<40)), "implausibly large"},
		{"not json", string(hdr("[1]", 0)), "not a JSON object"},
		{"truncated header", string(ref[:100]), "reading 512-byte header"},
		{"truncated data", string(ref[:len(ref)-3]), "data truncated"},
		{"trailing data", string(ref) + "x", "bytes after"},
		{"unknown dtype", string(hdr(`{"a":{"dtype":"F7","shape":[1],"data_offsets":[0,1]}}`, 1)), `unsupported dtype "F7"`},
		{"size mismatch", string(hdr(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, 4)), "needs 8 bytes"},
		{"gap", string(hdr(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, 2)), "gap or overlap"},
		{"overlap", string(hdr(`{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}`, 3)), "gap or overlap"},
		{"bad offsets", string(hdr(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[2,1]}}`, 2)), "is not [begin, end]"},
		{"bad metadata", string(hdr(`{"__metadata__":{"a":1}}`, 0)), "map of strings"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ReadSafetensors(strings.NewReader(c.in))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestSafetensorsWriteRejects(t *testing.T) {
	for name, ts := range map[string]map[string]*Tensor{
		"metadata name": {"__metadata__": Scalar[float32](1)},
		"bad tensor":    {"a": {DType: Float32, Shape: []int64{2}, Data: []float32{1}}},
	} {
		if err := WriteSafetensors(&bytes.Buffer{}, ts, nil); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
