package tensorio

import (
	"bytes"
	"reflect"
	"testing"
)

// FuzzReadNPY checks that arbitrary input gives a tensor or an error, never a panic, and that
// whatever is read writes back and reads again to the same tensor.
func FuzzReadNPY(f *testing.F) {
	for _, tt := range sampleTensors() {
		var b bytes.Buffer
		if err := WriteNPY(&b, tt); err != nil {
			f.Fatal(err)
		}
		f.Add(b.Bytes())
	}
	f.Add(npyFile(2, "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", make([]byte, 16)))
	f.Add(npyFile(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999,), }", nil))
	f.Add(npyFile(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,", nil))
	f.Add(npyFile(1, "{'descr': '", nil))
	f.Add([]byte("\x93NUMPY\x01\x00\xff\xff"))
	f.Add([]byte("\x93NUMPY\x02\x00\xff\xff\xff\xff"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ReadNPY(bytes.NewReader(data))
		if err != nil {
			return
		}
		if err := got.Validate(); err != nil {
			t.Fatalf("ReadNPY returned an invalid tensor: %v", err)
		}
		var b bytes.Buffer
		if err := WriteNPY(&b, got); err != nil {
			t.Fatalf("WriteNPY of a tensor ReadNPY returned: %v", err)
		}
		again, err := ReadNPY(&b)
		if err != nil {
			t.Fatalf("re-reading: %v", err)
		}
		if !reflect.DeepEqual(bitsOf(again), bitsOf(got)) {
			t.Fatalf("re-read differs: %v vs %v", again, got)
		}
	})
}

// bitsOf compares tensors by raw bytes, so NaN payloads compare equal.
func bitsOf(t *Tensor) []any {
	b, _ := t.Bytes()
	return []any{t.DType, t.Shape, append([]byte{}, b...)}
}

// FuzzReadSafetensors checks that arbitrary input gives tensors or an error, never a panic, and
// that whatever is read writes back and reads again to the same tensors.
func FuzzReadSafetensors(f *testing.F) {
	var b bytes.Buffer
	if err := WriteSafetensors(&b, sampleTensors(), map[string]string{"format": "pt"}); err != nil {
		f.Fatal(err)
	}
	f.Add(b.Bytes())
	f.Add([]byte("\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":{\"dtype\":1}}"))
	f.Add([]byte("\x02\x00\x00\x00\x00\x00\x00\x00{}"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ReadSafetensors(bytes.NewReader(data))
		if err != nil {
			return
		}
		var b bytes.Buffer
		if err := WriteSafetensors(&b, got.Tensors, got.Metadata); err != nil {
			t.Fatalf("WriteSafetensors of tensors ReadSafetensors returned: %v", err)
		}
		first := bytes.Clone(b.Bytes())
		again, err := ReadSafetensors(&b)
		if err != nil {
			t.Fatalf("re-reading: %v", err)
		}
		var b2 bytes.Buffer
		if err := WriteSafetensors(&b2, again.Tensors, again.Metadata); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, b2.Bytes()) {
			t.Fatal("tensors changed on a write/read round trip")
		}
	})
}
