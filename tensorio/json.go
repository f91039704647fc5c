package tensorio

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/skipgraph/skipgraph/internal/safeio"
)

// jsonTensor is the JSON form {"shape": [...], "dtype": "float32", "data": [...]} with data
// flattened in row-major order.
type jsonTensor struct {
	Shape []int64         `json:"shape"`
	DType string          `json:"dtype"`
	Data  json.RawMessage `json:"data"`
}

// MarshalJSON writes t as {"shape": [...], "dtype": "...", "data": [...]}. Half-precision data is
// written as decoded numbers; NaN and infinities cannot be written (JSON has no such numbers).
func (t *Tensor) MarshalJSON() ([]byte, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString(`{"shape":[`)
	for i, d := range t.Shape {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(d, 10))
	}
	b.WriteString(`],"dtype":"`)
	b.WriteString(t.DType.String())
	b.WriteString(`","data":[`)
	var num []byte
	writeFloat := func(i int, v float64, bits int) error {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%v tensor: element %d is %v, which JSON cannot represent", t.DType, i, v)
		}
		num = strconv.AppendFloat(num[:0], v, 'g', -1, bits)
		b.Write(num)
		return nil
	}
	n := t.Len()
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		var err error
		switch d := t.Data.(type) {
		case []float32:
			err = writeFloat(i, float64(d[i]), 32)
		case []float64:
			err = writeFloat(i, d[i], 64)
		case []int64:
			b.WriteString(strconv.FormatInt(d[i], 10))
		case []int32:
			b.WriteString(strconv.FormatInt(int64(d[i]), 10))
		case []int16:
			b.WriteString(strconv.FormatInt(int64(d[i]), 10))
		case []int8:
			b.WriteString(strconv.FormatInt(int64(d[i]), 10))
		case []uint64:
			b.WriteString(strconv.FormatUint(d[i], 10))
		case []uint32:
			b.WriteString(strconv.FormatUint(uint64(d[i]), 10))
		case []uint8:
			b.WriteString(strconv.FormatUint(uint64(d[i]), 10))
		case []bool:
			b.WriteString(strconv.FormatBool(d[i]))
		case []uint16:
			switch t.DType {
			case Float16:
				err = writeFloat(i, float64(Float16ToFloat32(d[i])), 32)
			case BFloat16:
				err = writeFloat(i, float64(BFloat16ToFloat32(d[i])), 32)
			default:
				b.WriteString(strconv.FormatUint(uint64(d[i]), 10))
			}
		}
		if err != nil {
			return nil, err
		}
	}
	b.WriteString(`]}`)
	return b.Bytes(), nil
}

// UnmarshalJSON reads the {"shape", "dtype", "data"} form. Bool data may be true/false or 0/1;
// float16 and bfloat16 data are numbers, rounded to nearest even.
func (t *Tensor) UnmarshalJSON(b []byte) error {
	var j jsonTensor
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("tensor JSON: %w", err)
	}
	if j.DType == "" {
		return errors.New(`tensor JSON: missing "dtype"`)
	}
	if j.Shape == nil {
		return errors.New(`tensor JSON: missing "shape" (use [] for a scalar)`)
	}
	if j.Data == nil {
		return errors.New(`tensor JSON: missing "data"`)
	}
	dt, err := ParseDType(j.DType)
	if err != nil {
		return fmt.Errorf("tensor JSON: %w", err)
	}
	n, err := NumElementsOf(j.Shape)
	if err != nil {
		return fmt.Errorf("tensor JSON: %w", err)
	}
	var data any
	switch dt {
	case Float16, BFloat16:
		var f []float32
		if err = json.Unmarshal(j.Data, &f); err == nil {
			if dt == Float16 {
				data = Float32sToFloat16s(nil, f)
			} else {
				h := make([]uint16, len(f))
				for i, v := range f {
					h[i] = Float32ToBFloat16(v)
				}
				data = h
			}
		}
	case Bool:
		var bs []bool
		if err = json.Unmarshal(j.Data, &bs); err != nil {
			var is []int64
			if err = json.Unmarshal(j.Data, &is); err == nil {
				bs = make([]bool, len(is))
				for i, v := range is {
					bs[i] = v != 0
				}
			}
		}
		data = bs
	default:
		holder := makeData(dt, 0)
		ptr := sliceAddr(holder)
		if err = json.Unmarshal(j.Data, ptr); err == nil {
			data = derefSlice(ptr)
		}
	}
	if err != nil {
		return fmt.Errorf("tensor JSON: %v data: %w", dt, err)
	}
	nt := Tensor{DType: dt, Shape: j.Shape, Data: data}
	if l := nt.Len(); int64(l) != n {
		return fmt.Errorf("tensor JSON: shape %v needs %d elements, data has %d", j.Shape, n, l)
	}
	*t = nt
	return nil
}

// sliceAddr returns a pointer to a new empty slice of the same type as s, for json.Unmarshal.
func sliceAddr(s any) any {
	switch s.(type) {
	case []float32:
		return new([]float32)
	case []float64:
		return new([]float64)
	case []int64:
		return new([]int64)
	case []int32:
		return new([]int32)
	case []int16:
		return new([]int16)
	case []int8:
		return new([]int8)
	case []uint64:
		return new([]uint64)
	case []uint32:
		return new([]uint32)
	case []uint16:
		return new([]uint16)
	case []uint8:
		// Unmarshal would expect base64 for []uint8; decode numbers instead.
		return new(byteNumbers)
	}
	return nil
}

// byteNumbers decodes a JSON array of numbers into bytes.
type byteNumbers []uint8

// UnmarshalJSON decodes an array of numbers, each 0..255.
func (b *byteNumbers) UnmarshalJSON(data []byte) error {
	var v []uint8
	var nums []uint64
	if err := json.Unmarshal(data, &nums); err != nil {
		return err
	}
	v = make([]uint8, len(nums))
	for i, n := range nums {
		if n > 255 {
			return fmt.Errorf("element %d (%d) does not fit uint8", i, n)
		}
		v[i] = uint8(n)
	}
	*b = v
	return nil
}

func derefSlice(p any) any {
	switch v := p.(type) {
	case *[]float32:
		return nonNil(*v)
	case *[]float64:
		return nonNil(*v)
	case *[]int64:
		return nonNil(*v)
	case *[]int32:
		return nonNil(*v)
	case *[]int16:
		return nonNil(*v)
	case *[]int8:
		return nonNil(*v)
	case *[]uint64:
		return nonNil(*v)
	case *[]uint32:
		return nonNil(*v)
	case *[]uint16:
		return nonNil(*v)
	case *byteNumbers:
		return nonNil([]uint8(*v))
	}
	return nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// ReadJSON reads one tensor in the JSON form from r.
func ReadJSON(r io.Reader) (*Tensor, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	t := new(Tensor)
	if err := t.UnmarshalJSON(b); err != nil {
		return nil, err
	}
	return t, nil
}

// WriteJSON writes t in the JSON form to w, followed by a newline.
func WriteJSON(w io.Writer, t *Tensor) error {
	b, err := t.MarshalJSON()
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// LoadJSON reads the tensor JSON file at path.
func LoadJSON(path string) (*Tensor, error) {
	b, err := safeio.ReadFile(path)
	if err != nil {
		return nil, err
	}
	t := new(Tensor)
	if err := t.UnmarshalJSON(b); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// SaveJSON writes t to path in the JSON form, through a temporary file renamed into place.
func SaveJSON(path string, t *Tensor) error {
	return writeFileAtomic(path, func(w io.Writer) error { return WriteJSON(w, t) })
}

// LoadJSONMap reads a JSON object whose values are tensors in the JSON form, such as the
// "inputs" or "outputs" object of a reference file, from the file at path; key selects a nested
// object by a path of keys (none: the whole file is the map).
func LoadJSONMap(path string, key ...string) (map[string]*Tensor, error) {
	b, err := safeio.ReadFile(path)
	if err != nil {
		return nil, err
	}
	raw := json.RawMessage(b)
	for i, k := range key {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			return nil, fmt.Errorf("%s: reading key %q: %w", path, k, err)
		}
		v, ok := obj[k]
		if !ok {
			return nil, fmt.Errorf("%s: no key %q at depth %d", path, k, i)
		}
		raw = v
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	m := make(map[string]*Tensor, len(obj))
	for k, v := range obj {
		t := new(Tensor)
		if err := t.UnmarshalJSON(v); err != nil {
			return nil, fmt.Errorf("%s: tensor %q: %w", path, k, err)
		}
		m[k] = t
	}
	return m, nil
}
