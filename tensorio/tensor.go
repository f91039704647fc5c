package tensorio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"unsafe"
)

// Tensor is a dense, row-major (C order) tensor in Go memory.
//
// Data is a slice whose element type follows DType: []float32 (Float32), []float64 (Float64),
// []int64, []int32, []int16, []int8, []uint64, []uint32, []uint8, []bool, and []uint16 for
// Uint16, Float16 and BFloat16 (the latter two hold raw bits). len(Data) equals NumElements().
// A scalar has an empty (or nil) Shape and one element.
type Tensor struct {
	DType DType
	Shape []int64
	Data  any
}

// Element is the set of Go element types a Tensor's Data slice can have.
type Element interface {
	float32 | float64 | int64 | int32 | int16 | int8 | uint64 | uint32 | uint16 | uint8 | bool
}

// maxElements bounds the element count of a tensor this package allocates.
const maxElements = 1 << 40

// NumElementsOf returns the number of elements of a tensor with the given shape (1 for a scalar),
// or an error for a negative dimension or an element count that overflows.
func NumElementsOf(shape []int64) (int64, error) {
	n := int64(1)
	for i, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("shape %v: dimension %d is negative", shape, i)
		}
		if d != 0 && n > maxElements/d {
			return 0, fmt.Errorf("shape %v: too many elements", shape)
		}
		n *= d
	}
	return n, nil
}

// New returns a zero-filled tensor of the given type and shape.
func New(dt DType, shape ...int64) (*Tensor, error) {
	if !dt.Valid() {
		return nil, fmt.Errorf("new tensor: unsupported dtype %v", dt)
	}
	n, err := NumElementsOf(shape)
	if err != nil {
		return nil, fmt.Errorf("new tensor: %w", err)
	}
	return &Tensor{DType: dt, Shape: cloneShape(shape), Data: makeData(dt, int(n))}, nil
}

// FromSlice returns a tensor that uses data (not a copy) with the given shape. The dtype follows
// T; a []uint16 gives Uint16 (use FromFloat16 for half-precision bits).
func FromSlice[T Element](shape []int64, data []T) (*Tensor, error) {
	t := &Tensor{DType: dtypeOfSlice(any(data)), Shape: cloneShape(shape), Data: any(data)}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	return t, nil
}

// FromFloat16 returns a Float16 tensor that uses bits (IEEE half-precision bit patterns, not a
// copy) with the given shape.
func FromFloat16(shape []int64, bits []uint16) (*Tensor, error) {
	t := &Tensor{DType: Float16, Shape: cloneShape(shape), Data: bits}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	return t, nil
}

// Scalar returns a rank-0 tensor holding v.
func Scalar[T Element](v T) *Tensor {
	data := []T{v}
	return &Tensor{DType: dtypeOfSlice(any(data)), Shape: []int64{}, Data: any(data)}
}

func dtypeOfSlice(data any) DType {
	switch data.(type) {
	case []float32:
		return Float32
	case []float64:
		return Float64
	case []int64:
		return Int64
	case []int32:
		return Int32
	case []int16:
		return Int16
	case []int8:
		return Int8
	case []uint64:
		return Uint64
	case []uint32:
		return Uint32
	case []uint16:
		return Uint16
	case []uint8:
		return Uint8
	case []bool:
		return Bool
	}
	return Undefined
}

func makeData(dt DType, n int) any {
	switch dt {
	case Float32:
		return make([]float32, n)
	case Float64:
		return make([]float64, n)
	case Int64:
		return make([]int64, n)
	case Int32:
		return make([]int32, n)
	case Int16:
		return make([]int16, n)
	case Int8:
		return make([]int8, n)
	case Uint64:
		return make([]uint64, n)
	case Uint32:
		return make([]uint32, n)
	case Uint16, Float16, BFloat16:
		return make([]uint16, n)
	case Uint8:
		return make([]uint8, n)
	case Bool:
		return make([]bool, n)
	}
	return nil
}

// goSliceKind returns the dtype whose Go slice type stores dt's data (Uint16 for the half types).
func goSliceKind(dt DType) DType {
	if dt == Float16 || dt == BFloat16 {
		return Uint16
	}
	return dt
}

func cloneShape(s []int64) []int64 {
	if s == nil {
		return []int64{}
	}
	return append([]int64{}, s...)
}

// NumElements returns the number of elements the shape describes (1 for a scalar, 0 if the shape
// is invalid).
func (t *Tensor) NumElements() int64 {
	n, err := NumElementsOf(t.Shape)
	if err != nil {
		return 0
	}
	return n
}

// Rank returns len(t.Shape).
func (t *Tensor) Rank() int { return len(t.Shape) }

// Len returns the length of the Data slice, or -1 if Data is not a supported slice type.
func (t *Tensor) Len() int {
	switch d := t.Data.(type) {
	case []float32:
		return len(d)
	case []float64:
		return len(d)
	case []int64:
		return len(d)
	case []int32:
		return len(d)
	case []int16:
		return len(d)
	case []int8:
		return len(d)
	case []uint64:
		return len(d)
	case []uint32:
		return len(d)
	case []uint16:
		return len(d)
	case []uint8:
		return len(d)
	case []bool:
		return len(d)
	}
	return -1
}

// Validate checks that the dtype is supported, the shape is valid, Data has the Go type the dtype
// calls for, and its length matches the shape.
func (t *Tensor) Validate() error {
	if t == nil {
		return errors.New("tensor is nil")
	}
	if !t.DType.Valid() {
		return fmt.Errorf("tensor has unsupported dtype %v", t.DType)
	}
	n, err := NumElementsOf(t.Shape)
	if err != nil {
		return fmt.Errorf("tensor: %w", err)
	}
	if got := dtypeOfSlice(t.Data); got != goSliceKind(t.DType) {
		return fmt.Errorf("%v tensor holds data of Go type %T; want %T", t.DType, t.Data, makeData(t.DType, 0))
	}
	if l := t.Len(); int64(l) != n {
		return fmt.Errorf("%v tensor of shape %v needs %d elements, has %d", t.DType, t.Shape, n, l)
	}
	return nil
}

// String returns a short description such as "float32[4 3 32 32]".
func (t *Tensor) String() string {
	if t == nil {
		return "<nil tensor>"
	}
	return fmt.Sprintf("%v%v", t.DType, t.Shape)
}

// Clone returns a deep copy of t.
func (t *Tensor) Clone() *Tensor {
	c := &Tensor{DType: t.DType, Shape: cloneShape(t.Shape)}
	switch d := t.Data.(type) {
	case []float32:
		c.Data = append([]float32{}, d...)
	case []float64:
		c.Data = append([]float64{}, d...)
	case []int64:
		c.Data = append([]int64{}, d...)
	case []int32:
		c.Data = append([]int32{}, d...)
	case []int16:
		c.Data = append([]int16{}, d...)
	case []int8:
		c.Data = append([]int8{}, d...)
	case []uint64:
		c.Data = append([]uint64{}, d...)
	case []uint32:
		c.Data = append([]uint32{}, d...)
	case []uint16:
		c.Data = append([]uint16{}, d...)
	case []uint8:
		c.Data = append([]uint8{}, d...)
	case []bool:
		c.Data = append([]bool{}, d...)
	default:
		c.Data = t.Data
	}
	return c
}

// Float32s returns Data as []float32 (shared, not a copy) when DType is Float32, else nil.
func (t *Tensor) Float32s() []float32 {
	if t.DType != Float32 {
		return nil
	}
	d, _ := t.Data.([]float32)
	return d
}

// Float64s returns Data as []float64 (shared) when DType is Float64, else nil.
func (t *Tensor) Float64s() []float64 {
	if t.DType != Float64 {
		return nil
	}
	d, _ := t.Data.([]float64)
	return d
}

// Int64s returns Data as []int64 (shared) when DType is Int64, else nil.
func (t *Tensor) Int64s() []int64 {
	if t.DType != Int64 {
		return nil
	}
	d, _ := t.Data.([]int64)
	return d
}

// Int32s returns Data as []int32 (shared) when DType is Int32, else nil.
func (t *Tensor) Int32s() []int32 {
	if t.DType != Int32 {
		return nil
	}
	d, _ := t.Data.([]int32)
	return d
}

// Uint8s returns Data as []uint8 (shared) when DType is Uint8, else nil.
func (t *Tensor) Uint8s() []uint8 {
	if t.DType != Uint8 {
		return nil
	}
	d, _ := t.Data.([]uint8)
	return d
}

// Bools returns Data as []bool (shared) when DType is Bool, else nil.
func (t *Tensor) Bools() []bool {
	if t.DType != Bool {
		return nil
	}
	d, _ := t.Data.([]bool)
	return d
}

// Uint16s returns Data as []uint16 (shared) when DType is Uint16, Float16 or BFloat16 (raw bits
// for the latter two), else nil.
func (t *Tensor) Uint16s() []uint16 {
	if goSliceKind(t.DType) != Uint16 {
		return nil
	}
	d, _ := t.Data.([]uint16)
	return d
}

// AsFloat64 returns the elements converted to float64 in a new slice (half types are decoded,
// bools become 0 or 1).
func (t *Tensor) AsFloat64() ([]float64, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	n := t.Len()
	out := make([]float64, n)
	switch d := t.Data.(type) {
	case []float32:
		for i, v := range d {
			out[i] = float64(v)
		}
	case []float64:
		copy(out, d)
	case []int64:
		for i, v := range d {
			out[i] = float64(v)
		}
	case []int32:
		for i, v := range d {
			out[i] = float64(v)
		}
	case []int16:
		for i, v := range d {
			out[i] = float64(v)
		}
	case []int8:
		for i, v := range d {
			out[i] = float64(v)
		}
	case []uint64:
		for i, v := range d {
			out[i] = float64(v)
		}
	case []uint32:
		for i, v := range d {
			out[i] = float64(v)
		}
	case []uint16:
		for i, v := range d {
			switch t.DType {
			case Float16:
				out[i] = float64(Float16ToFloat32(v))
			case BFloat16:
				out[i] = float64(BFloat16ToFloat32(v))
			default:
				out[i] = float64(v)
			}
		}
	case []uint8:
		for i, v := range d {
			out[i] = float64(v)
		}
	case []bool:
		for i, v := range d {
			if v {
				out[i] = 1
			}
		}
	}
	return out, nil
}

// AsFloat32 returns the elements converted to float32 in a new slice (see AsFloat64).
func (t *Tensor) AsFloat32() ([]float32, error) {
	if t.DType == Float16 {
		if err := t.Validate(); err != nil {
			return nil, err
		}
		return Float16sToFloat32s(nil, t.Data.([]uint16)), nil
	}
	f, err := t.AsFloat64()
	if err != nil {
		return nil, err
	}
	out := make([]float32, len(f))
	for i, v := range f {
		out[i] = float32(v)
	}
	return out, nil
}

// MaxAbsDiff returns the largest absolute element-wise difference between a and b, which must have
// the same shape (dtypes may differ; values are compared as float64). NaN in either gives +Inf
// unless both are NaN at the same position.
func MaxAbsDiff(a, b *Tensor) (float64, error) {
	if !slices.Equal(a.Shape, b.Shape) {
		return 0, fmt.Errorf("max abs diff: shapes differ: %v vs %v", a.Shape, b.Shape)
	}
	x, err := a.AsFloat64()
	if err != nil {
		return 0, err
	}
	y, err := b.AsFloat64()
	if err != nil {
		return 0, err
	}
	m := 0.0
	for i := range x {
		xn, yn := math.IsNaN(x[i]), math.IsNaN(y[i])
		if xn || yn {
			if xn != yn {
				return math.Inf(1), nil
			}
			continue
		}
		if d := math.Abs(x[i] - y[i]); d > m || math.IsNaN(d) {
			m = d
		}
	}
	return m, nil
}

// SameShape reports whether a and b have identical shapes (a nil and an empty shape are equal).
func SameShape(a, b []int64) bool { return slices.Equal(a, b) }

// Bytes returns the little-endian bytes of the data. On little-endian machines, which are the
// only ones the runtime supports, the result shares memory with Data (a bool is one byte, 0 or 1).
func (t *Tensor) Bytes() ([]byte, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	n := t.Len()
	if n == 0 {
		return []byte{}, nil
	}
	var p unsafe.Pointer
	switch d := t.Data.(type) {
	case []float32:
		p = unsafe.Pointer(&d[0])
	case []float64:
		p = unsafe.Pointer(&d[0])
	case []int64:
		p = unsafe.Pointer(&d[0])
	case []int32:
		p = unsafe.Pointer(&d[0])
	case []int16:
		p = unsafe.Pointer(&d[0])
	case []int8:
		p = unsafe.Pointer(&d[0])
	case []uint64:
		p = unsafe.Pointer(&d[0])
	case []uint32:
		p = unsafe.Pointer(&d[0])
	case []uint16:
		p = unsafe.Pointer(&d[0])
	case []uint8:
		return d, nil
	case []bool:
		p = unsafe.Pointer(&d[0])
	}
	raw := unsafe.Slice((*byte)(p), n*t.DType.Size())
	if !hostLittleEndian {
		// Copy and byte-swap into little-endian order.
		return swapCopy(raw, t.DType.Size()), nil
	}
	return raw, nil
}

// FromBytes decodes little-endian raw data into a new tensor (the bytes are copied). For Bool
// any nonzero byte is true.
func FromBytes(dt DType, shape []int64, raw []byte) (*Tensor, error) {
	if !dt.Valid() {
		return nil, fmt.Errorf("tensor from bytes: unsupported dtype %v", dt)
	}
	n, err := NumElementsOf(shape)
	if err != nil {
		return nil, fmt.Errorf("tensor from bytes: %w", err)
	}
	size := int64(dt.Size())
	if int64(len(raw)) != n*size {
		return nil, fmt.Errorf("tensor from bytes: %v%v needs %d bytes, got %d", dt, shape, n*size, len(raw))
	}
	t := &Tensor{DType: dt, Shape: cloneShape(shape), Data: makeData(dt, int(n))}
	le := binary.LittleEndian
	switch d := t.Data.(type) {
	case []float32:
		for i := range d {
			d[i] = math.Float32frombits(le.Uint32(raw[4*i:]))
		}
	case []float64:
		for i := range d {
			d[i] = math.Float64frombits(le.Uint64(raw[8*i:]))
		}
	case []int64:
		for i := range d {
			d[i] = int64(le.Uint64(raw[8*i:]))
		}
	case []int32:
		for i := range d {
			d[i] = int32(le.Uint32(raw[4*i:]))
		}
	case []int16:
		for i := range d {
			d[i] = int16(le.Uint16(raw[2*i:]))
		}
	case []int8:
		for i := range d {
			d[i] = int8(raw[i])
		}
	case []uint64:
		for i := range d {
			d[i] = le.Uint64(raw[8*i:])
		}
	case []uint32:
		for i := range d {
			d[i] = le.Uint32(raw[4*i:])
		}
	case []uint16:
		for i := range d {
			d[i] = le.Uint16(raw[2*i:])
		}
	case []uint8:
		copy(d, raw)
	case []bool:
		for i := range d {
			d[i] = raw[i] != 0
		}
	}
	return t, nil
}

var hostLittleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

func swapCopy(raw []byte, size int) []byte {
	out := make([]byte, len(raw))
	for i := 0; i+size <= len(raw); i += size {
		for j := 0; j < size; j++ {
			out[i+j] = raw[i+size-1-j]
		}
	}
	return out
}
