package tensorio

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// sampleTensors covers every dtype and the interesting shapes.
func sampleTensors() map[string]*Tensor {
	mk := func(dt DType, shape []int64, data any) *Tensor {
		return &Tensor{DType: dt, Shape: shape, Data: data}
	}
	return map[string]*Tensor{
		"f32 2x3":    mk(Float32, []int64{2, 3}, []float32{1, -2.5, 3e-8, 4e20, 0, -0.125}),
		"f32 scalar": mk(Float32, []int64{}, []float32{7.25}),
		"f32 empty":  mk(Float32, []int64{0, 4}, []float32{}),
		"f64 3":      mk(Float64, []int64{3}, []float64{1.0 / 3, -1e300, 5e-324}),
		"i64 2x2":    mk(Int64, []int64{2, 2}, []int64{-1 << 62, 1<<62 + 1, 0, 63}),
		"i32 1x1x3":  mk(Int32, []int64{1, 1, 3}, []int32{-7, 0, 1 << 30}),
		"i16 2":      mk(Int16, []int64{2}, []int16{-300, 300}),
		"i8 3":       mk(Int8, []int64{3}, []int8{-128, 0, 127}),
		"u64 1":      mk(Uint64, []int64{1}, []uint64{1 << 63}),
		"u32 2":      mk(Uint32, []int64{2}, []uint32{0, 1 << 31}),
		"u16 2":      mk(Uint16, []int64{2}, []uint16{0, 65535}),
		"u8 4":       mk(Uint8, []int64{2, 2}, []uint8{0, 1, 128, 255}),
		"bool 3":     mk(Bool, []int64{3}, []bool{true, false, true}),
		"f16 2x2":    mk(Float16, []int64{2, 2}, []uint16{0x3c00, 0xc000, 0x0001, 0x7bff}),
	}
}

func TestNPYRoundTrip(t *testing.T) {
	for name, want := range sampleTensors() {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteNPY(&buf, want); err != nil {
				t.Fatal(err)
			}
			hl := int(binary.LittleEndian.Uint16(buf.Bytes()[8:10]))
			if (10+hl)%64 != 0 || buf.Bytes()[10+hl-1] != '\n' {
				t.Errorf("header of %d bytes is not padded to 64 or does not end in newline", hl)
			}
			got, err := ReadNPY(&buf)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("round trip: got %v %v, want %v %v", got, got.Data, want, want.Data)
			}
		})
	}
}

// A file laid out exactly as numpy.save writes it (numpy >= 1.9, format 1.0).
func TestNPYNumpyLayout(t *testing.T) {
	dict := "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"
	hdr := dict + strings.Repeat(" ", 128-10-len(dict)-1) + "\n"
	var want bytes.Buffer
	want.WriteString("\x93NUMPY\x01\x00")
	binary.Write(&want, binary.LittleEndian, uint16(len(hdr)))
	want.WriteString(hdr)
	binary.Write(&want, binary.LittleEndian, []float32{0, 1, 2, 3, 4, 5})

	tt, _ := FromSlice([]int64{2, 3}, []float32{0, 1, 2, 3, 4, 5})
	var got bytes.Buffer
	if err := WriteNPY(&got, tt); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Errorf("WriteNPY:\n got %q\nwant %q", got.Bytes(), want.Bytes())
	}
}

func npyFile(major byte, dict string, data []byte) []byte {
	var b bytes.Buffer
	b.WriteString("\x93NUMPY")
	b.WriteByte(major)
	b.WriteByte(0)
	if major == 1 {
		binary.Write(&b, binary.LittleEndian, uint16(len(dict)+1))
	} else {
		binary.Write(&b, binary.LittleEndian, uint32(len(dict)+1))
	}
	b.WriteString(dict + "\n")
	b.Write(data)
	return b.Bytes()
}

func TestNPYRead(t *testing.T) {
	le := func(v any) []byte {
		var b bytes.Buffer
		binary.Write(&b, binary.LittleEndian, v)
		return b.Bytes()
	}
	cases := []struct {
		name    string
		file    []byte
		want    *Tensor
		wantErr string
	}{
		{"v2 header", npyFile(2, "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", le([]int64{5, -6})),
			&Tensor{DType: Int64, Shape: []int64{2}, Data: []int64{5, -6}}, ""},
		{"v3 header", npyFile(3, "{'descr': '<i4', 'fortran_order': False, 'shape': (1,), }", le([]int32{9})),
			&Tensor{DType: Int32, Shape: []int64{1}, Data: []int32{9}}, ""},
		{"bool ?", npyFile(1, "{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }", []byte{1, 0, 2}),
			&Tensor{DType: Bool, Shape: []int64{3}, Data: []bool{true, false, true}}, ""},
		{"bool question mark", npyFile(1, "{'descr': '?', 'fortran_order': False, 'shape': (), }", []byte{1}),
			&Tensor{DType: Bool, Shape: []int64{}, Data: []bool{true}}, ""},
		{"key order and spacing", npyFile(1, "{ 'shape':(2,1),'fortran_order':False,'descr':'<f2' }", le([]uint16{0x3c00, 0})),
			&Tensor{DType: Float16, Shape: []int64{2, 1}, Data: []uint16{0x3c00, 0}}, ""},
		{"fortran", npyFile(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", make([]byte, 16)), nil, "Fortran order"},
		{"big endian", npyFile(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", make([]byte, 4)), nil, "big-endian"},
		{"complex", npyFile(1, "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", make([]byte, 8)), nil, "unsupported dtype"},
		{"truncated", npyFile(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (4,), }", make([]byte, 8)), nil, "truncated"},
		{"huge claim", npyFile(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (100000000000,), }", nil), nil, "truncated"},
		{"overflow", npyFile(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", nil), nil, "too many"},
		{"bad magic", []byte("PK\x03\x04 not npy at all"), nil, "bad magic"},
		{"bad version", []byte("\x93NUMPY\x09\x00\x00\x00"), nil, "version 9.0"},
		{"short", []byte("\x93NUM"), nil, "magic"},
		{"no shape", npyFile(1, "{'descr': '<f4', 'fortran_order': False}", nil), nil, "'shape'"},
		{"negative dim", npyFile(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}", nil), nil, "integer"},
		{"garbage dict", npyFile(1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,)}", nil), nil, "bad header"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ReadNPY(bytes.NewReader(c.file))
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, c.wantErr)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("error spans several lines: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %v %v, want %v %v", got, got.Data, c.want, c.want.Data)
			}
		})
	}
}

func TestJSONRoundTrip(t *testing.T) {
	for name, want := range sampleTensors() {
		t.Run(name, func(t *testing.T) {
			b, err := json.Marshal(want)
			if err != nil {
				t.Fatal(err)
			}
			var got Tensor
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("%v (json %s)", err, b)
			}
			if !reflect.DeepEqual(&got, want) {
				t.Errorf("round trip: got %v %v, want %v %v (json %s)", &got, got.Data, want, want.Data, b)
			}
		})
	}
}

func TestJSONRead(t *testing.T) {
	cases := []struct {
		in      string
		want    *Tensor
		wantErr string
	}{
		{`{"shape":[2],"dtype":"int64","data":[9007199254740993,-1]}`, &Tensor{DType: Int64, Shape: []int64{2}, Data: []int64{9007199254740993, -1}}, ""},
		{`{"shape":[],"dtype":"float","data":[0.5]}`, &Tensor{DType: Float32, Shape: []int64{}, Data: []float32{0.5}}, ""},
		{`{"shape":[2],"dtype":"bool","data":[1,0]}`, &Tensor{DType: Bool, Shape: []int64{2}, Data: []bool{true, false}}, ""},
		{`{"shape":[1],"dtype":"uint8","data":[200]}`, &Tensor{DType: Uint8, Shape: []int64{1}, Data: []uint8{200}}, ""},
		{`{"shape":[1],"dtype":"float16","data":[0.1]}`, &Tensor{DType: Float16, Shape: []int64{1}, Data: []uint16{0x2e66}}, ""},
		{`{"shape":[3],"dtype":"float32","data":[1,2]}`, nil, "needs 3 elements, data has 2"},
		{`{"shape":[1],"dtype":"complex64","data":[1]}`, nil, "unknown dtype"},
		{`{"shape":[1],"dtype":"int32","data":[1.5]}`, nil, "int32 data"},
		{`{"shape":[1],"dtype":"uint8","data":[256]}`, nil, "does not fit"},
		{`{"dtype":"int32","data":[1]}`, nil, "missing \"shape\""},
		{`{"shape":[1],"data":[1]}`, nil, "missing \"dtype\""},
		{`[1,2]`, nil, "tensor JSON"},
	}
	for _, c := range cases {
		got, err := ReadJSON(strings.NewReader(c.in))
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%s: err = %v, want one containing %q", c.in, err, c.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: got %v %v, want %v %v", c.in, got, got.Data, c.want, c.want.Data)
		}
	}
	nan := &Tensor{DType: Float32, Shape: []int64{1}, Data: []float32{float32(zero() / zero())}}
	if _, err := json.Marshal(nan); err == nil {
		t.Error("marshalling NaN: no error")
	}
}

func zero() float64 { return 0 }

func TestSaveLoadFiles(t *testing.T) {
	dir := t.TempDir()
	want := sampleTensors()["f32 2x3"]
	p := filepath.Join(dir, "a.npy")
	if err := SaveNPY(p, want); err != nil {
		t.Fatal(err)
	}
	got, err := LoadNPY(p)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("LoadNPY: %v, %v", got, err)
	}
	pj := filepath.Join(dir, "a.json")
	if err := SaveJSON(pj, want); err != nil {
		t.Fatal(err)
	}
	got, err = LoadJSON(pj)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("LoadJSON: %v, %v", got, err)
	}
	// A failed save leaves nothing behind.
	bad := &Tensor{DType: Float32, Shape: []int64{3}, Data: []float32{1}}
	if err := SaveNPY(filepath.Join(dir, "bad.npy"), bad); err == nil {
		t.Fatal("SaveNPY of an invalid tensor: no error")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Errorf("folder holds %d entries after a failed save, want 2", len(ents))
	}
	if _, err := LoadNPY(filepath.Join(dir, "missing.npy")); err == nil || !strings.Contains(err.Error(), "missing.npy") {
		t.Errorf("LoadNPY of a missing file: %v", err)
	}
}

func TestTensorHelpers(t *testing.T) {
	x, err := FromSlice([]int64{2, 2}, []float32{1, 2, 3, 4})
	if err != nil {
		t.Fatal(err)
	}
	if x.NumElements() != 4 || x.Float32s()[3] != 4 || x.Int64s() != nil {
		t.Errorf("helpers on %v", x)
	}
	if _, err := FromSlice([]int64{3}, []int64{1}); err == nil {
		t.Error("FromSlice with too little data: no error")
	}
	if s := Scalar(int64(3)); s.DType != Int64 || s.NumElements() != 1 || len(s.Shape) != 0 {
		t.Errorf("Scalar: %v", s)
	}
	h, _ := ToFloat16(x)
	back, _ := ToFloat32(h)
	if d, err := MaxAbsDiff(x, back); err != nil || d != 0 {
		t.Errorf("fp16 round trip of small ints: diff %v, %v", d, err)
	}
	y := x.Clone()
	y.Float32s()[0] = 1.5
	if d, _ := MaxAbsDiff(x, y); d != 0.5 {
		t.Errorf("MaxAbsDiff = %v, want 0.5", d)
	}
	if _, err := MaxAbsDiff(x, Scalar(float32(1))); err == nil {
		t.Error("MaxAbsDiff of different shapes: no error")
	}
	bad := []*Tensor{
		{DType: Float32, Shape: []int64{2}, Data: []float64{1, 2}},
		{DType: DType(99), Shape: []int64{1}, Data: []float32{1}},
		{DType: Float32, Shape: []int64{-1}, Data: []float32{}},
		{DType: Float16, Shape: []int64{1}, Data: []float32{1}},
	}
	for _, b := range bad {
		if err := b.Validate(); err == nil {
			t.Errorf("Validate(%v with %T): no error", b, b.Data)
		}
	}
	for _, dt := range []DType{Float32, Float64, Float16, BFloat16, Int64, Int32, Int16, Int8, Uint64, Uint32, Uint16, Uint8, Bool} {
		p, err := ParseDType(dt.String())
		if err != nil || p != dt {
			t.Errorf("ParseDType(%q) = %v, %v", dt.String(), p, err)
		}
		z, err := New(dt, 2, 3)
		if err != nil || z.Validate() != nil {
			t.Errorf("New(%v): %v", dt, err)
		}
	}
}

// The reference fixture's reference file parses (testenv imports this package, so the path is
// spelled out here).
func TestReadReferenceJSON(t *testing.T) {
	p := filepath.Join("..", "testdata", "clip-hf-tiny", "reference.json")
	in, err := LoadJSONMap(p, "inputs")
	if err != nil {
		t.Fatal(err)
	}
	if ids := in["input_ids"]; ids == nil || ids.DType != Int64 || len(ids.Shape) != 2 {
		t.Errorf("input_ids = %v", ids)
	}
	if px := in["pixel_values"]; px == nil || px.DType != Float32 || px.NumElements() != int64(len(px.Float32s())) {
		t.Errorf("pixel_values = %v", px)
	}
}
