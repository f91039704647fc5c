package graph

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync"

	"github.com/skipgraph/skipgraph/tensorio"
)

// Tensor is an immutable constant: a weight, an initializer or a Constant node's value.
// Its data is raw little-endian bytes in row-major order, held in memory or loaded on demand from
// the file the model came from. A pass that needs a different value makes a new Tensor.
type Tensor struct {
	// DType is the element type.
	DType DType
	// Dims are the dimensions; empty for a scalar.
	Dims []int64
	// Location names the external data file holding the data, when the source stored it outside
	// the model file; informational.
	Location string
	// Src is the codec's original record of this tensor, so it can be written back unchanged.
	Src any

	once   sync.Once
	raw    []byte
	load   func() ([]byte, error)
	err    error
	nbytes int64
}

// NewTensor returns a tensor holding raw little-endian data. It panics if the data length does
// not match the dimensions, which is a programming error.
func NewTensor(dt DType, dims []int64, raw []byte) *Tensor {
	t := &Tensor{DType: dt, Dims: append([]int64(nil), dims...), raw: raw, nbytes: int64(len(raw))}
	if sz := dt.Size(); sz > 0 && int64(sz)*t.NumElements() != int64(len(raw)) {
		panic(fmt.Sprintf("graph.NewTensor: %d bytes for %s%v", len(raw), dt, dims))
	}
	t.once.Do(func() {})
	return t
}

// NewLazyTensor returns a tensor whose nbytes bytes of data are produced by load on first use.
// The codec uses it for weights read from a file; src is its original record.
func NewLazyTensor(dt DType, dims []int64, nbytes int64, load func() ([]byte, error), src any) *Tensor {
	return &Tensor{DType: dt, Dims: append([]int64(nil), dims...), load: load, nbytes: nbytes, Src: src}
}

// FromFloat32 returns a float32 tensor.
func FromFloat32(dims []int64, v []float32) *Tensor {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return NewTensor(Float, dims, b)
}

// FromFloat64 returns a float64 tensor.
func FromFloat64(dims []int64, v []float64) *Tensor {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(x))
	}
	return NewTensor(Double, dims, b)
}

// FromInt64 returns an int64 tensor.
func FromInt64(dims []int64, v []int64) *Tensor {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:], uint64(x))
	}
	return NewTensor(Int64, dims, b)
}

// ScalarFloat returns a rank-0 tensor of type dt (Float, Double or Float16) holding x.
func ScalarFloat(dt DType, x float64) *Tensor {
	switch dt {
	case Double:
		return FromFloat64(nil, []float64{x})
	case Float16:
		b := make([]byte, 2)
		binary.LittleEndian.PutUint16(b, tensorio.Float32ToFloat16(float32(x)))
		return NewTensor(Float16, nil, b)
	}
	return FromFloat32(nil, []float32{float32(x)})
}

// NumElements returns the number of elements.
func (t *Tensor) NumElements() int64 {
	n := int64(1)
	for _, d := range t.Dims {
		n *= d
	}
	return n
}

// NumBytes returns the size of the data in bytes.
func (t *Tensor) NumBytes() int64 { return t.nbytes }

// Loaded reports whether the data is in memory (always true for tensors made by NewTensor).
func (t *Tensor) Loaded() bool { return t.load == nil || t.raw != nil }

// Bytes returns the raw little-endian data, loading it on first use. The slice must not be
// modified: for a tensor read from a file it may be read-only memory mapped from that file,
// valid while the tensor is reachable.
func (t *Tensor) Bytes() ([]byte, error) {
	t.once.Do(func() {
		if t.load != nil {
			t.raw, t.err = t.load()
			if t.err == nil && int64(len(t.raw)) != t.nbytes && t.DType.Size() > 0 {
				t.err = fmt.Errorf("tensor data has %d bytes, want %d", len(t.raw), t.nbytes)
			}
		}
	})
	return t.raw, t.err
}

// Float32s returns the data as float32 values (converting float16 and float64).
func (t *Tensor) Float32s() ([]float32, error) {
	b, err := t.Bytes()
	if err != nil {
		return nil, err
	}
	n := int(t.NumElements())
	out := make([]float32, n)
	switch t.DType {
	case Float:
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
	case Double:
		for i := range out {
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:])))
		}
	case Float16:
		for i := range out {
			out[i] = tensorio.Float16ToFloat32(binary.LittleEndian.Uint16(b[2*i:]))
		}
	default:
		return nil, fmt.Errorf("tensor of %s is not floating point", t.DType)
	}
	return out, nil
}

// Float64s returns floating-point data as float64 values.
func (t *Tensor) Float64s() ([]float64, error) {
	if t.DType == Double {
		b, err := t.Bytes()
		if err != nil {
			return nil, err
		}
		out := make([]float64, t.NumElements())
		for i := range out {
			out[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
		}
		return out, nil
	}
	f, err := t.Float32s()
	if err != nil {
		return nil, err
	}
	out := make([]float64, len(f))
	for i, x := range f {
		out[i] = float64(x)
	}
	return out, nil
}

// Int64s returns integer data (int64, int32, int8, uint8, bool) as int64 values.
func (t *Tensor) Int64s() ([]int64, error) {
	b, err := t.Bytes()
	if err != nil {
		return nil, err
	}
	out := make([]int64, t.NumElements())
	switch t.DType {
	case Int64:
		for i := range out {
			out[i] = int64(binary.LittleEndian.Uint64(b[8*i:]))
		}
	case Int32:
		for i := range out {
			out[i] = int64(int32(binary.LittleEndian.Uint32(b[4*i:])))
		}
	case Int8:
		for i := range out {
			out[i] = int64(int8(b[i]))
		}
	case Uint8, Bool:
		for i := range out {
			out[i] = int64(b[i])
		}
	default:
		return nil, fmt.Errorf("tensor of %s is not integer", t.DType)
	}
	return out, nil
}
