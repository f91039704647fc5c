package runtime

import (
	"errors"
	"fmt"
	"reflect"
	"unsafe"

	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/tensorio"
	ort "github.com/yalue/onnxruntime_go"
)

// Tensor is the project's host tensor type (an alias of tensorio.Tensor).
type Tensor = tensorio.Tensor

// DType is an element type numbered as ONNX TensorProto.DataType (an alias of tensorio.DType).
type DType = tensorio.DType

// Value is an ONNX Runtime tensor whose data lives in Go memory, for use with a Binding. Its Go
// view (Tensor) shares memory with ORT: writes to the view's slice are seen by the next run, and
// outputs written by a run are seen in the slice, without copies. Close a Value when done with it.
//
// A Value made by a Memory instead lives in memory ONNX Runtime allocated on a session's device
// (GPU memory for a CUDA session): it has no Go view there (Tensor returns nil), and data moves
// in and out of it through Kernels.Copy.
type Value struct {
	t *Tensor
	v ort.Value
	// dev is set for a Value in ORT-allocated memory: its OrtValue, type and shape.
	dev *devValue
}

// NewValue returns a Value over t's data (no copy). t must stay as it is (same slice, same
// shape) while the Value is in use. A rank-0 t is the exception: its element is copied into
// memory that ORT holds, which the Value's Tensor view shares.
func NewValue(t *Tensor) (*Value, error) {
	if err := ensureInit(); err != nil {
		return nil, err
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	v, err := newOrtValue(t)
	if err != nil {
		return nil, err
	}
	return v, nil
}

// NewEmptyValue returns a zero-filled Value of the given type and shape.
func NewEmptyValue(dt DType, shape ...int64) (*Value, error) {
	t, err := tensorio.New(dt, shape...)
	if err != nil {
		return nil, err
	}
	return NewValue(t)
}

func newOrtValue(t *Tensor) (*Value, error) {
	shape := ort.Shape(t.Shape)
	if len(t.Shape) == 0 {
		return newScalarValue(t)
	}
	var (
		v   ort.Value
		err error
	)
	switch d := t.Data.(type) {
	case []float32:
		v, err = ort.NewTensor(shape, d)
	case []float64:
		v, err = ort.NewTensor(shape, d)
	case []int64:
		v, err = ort.NewTensor(shape, d)
	case []int32:
		v, err = ort.NewTensor(shape, d)
	case []int16:
		v, err = ort.NewTensor(shape, d)
	case []int8:
		v, err = ort.NewTensor(shape, d)
	case []uint64:
		v, err = ort.NewTensor(shape, d)
	case []uint32:
		v, err = ort.NewTensor(shape, d)
	case []uint8:
		v, err = ort.NewTensor(shape, d)
	case []bool:
		v, err = ort.NewTensor(shape, d)
	case []uint16:
		if t.DType == tensorio.Uint16 {
			v, err = ort.NewTensor(shape, d)
			break
		}
		if len(d) == 0 {
			return nil, fmt.Errorf("%v tensor of shape %v has no elements; empty half-precision tensors are not supported", t.DType, t.Shape)
		}
		raw := unsafe.Slice((*byte)(unsafe.Pointer(&d[0])), 2*len(d))
		v, err = ort.NewCustomDataTensor(shape, raw, ort.TensorElementDataType(t.DType))
	default:
		return nil, fmt.Errorf("tensor data of Go type %T is not supported", t.Data)
	}
	if err != nil {
		return nil, errs.Wrap(err, "creating ORT tensor %v: %s", t, oneLine(err))
	}
	return &Value{t: t, v: v}, nil
}

// scalarValue creates an ORT scalar and returns a Value whose view aliases the scalar's memory.
// onnxruntime_go keeps that memory in an unexported slice and its Scalar.Set replaces the slice
// (ORT would not see the change), so the view is made from that slice directly.
func scalarValue[T tensorio.Element](dt DType, x T) (*Value, error) {
	s, err := ort.NewScalar(x)
	if err != nil {
		return nil, fmt.Errorf("creating ORT scalar: %s", oneLine(err))
	}
	f := reflect.ValueOf(s).Elem().FieldByName("data")
	if !f.IsValid() || f.Kind() != reflect.Slice || f.Len() != 1 || f.Type().Elem() != reflect.TypeFor[T]() {
		s.Destroy()
		return nil, errors.New("creating ORT scalar: unexpected onnxruntime_go Scalar layout; this build of the runtime package does not match its onnxruntime_go version")
	}
	data := unsafe.Slice((*T)(f.UnsafePointer()), 1)
	return &Value{t: &Tensor{DType: dt, Shape: []int64{}, Data: data}, v: s}, nil
}

func newScalarValue(t *Tensor) (*Value, error) {
	switch d := t.Data.(type) {
	case []float32:
		return scalarValue(t.DType, d[0])
	case []float64:
		return scalarValue(t.DType, d[0])
	case []int64:
		return scalarValue(t.DType, d[0])
	case []int32:
		return scalarValue(t.DType, d[0])
	case []int16:
		return scalarValue(t.DType, d[0])
	case []int8:
		return scalarValue(t.DType, d[0])
	case []uint64:
		return scalarValue(t.DType, d[0])
	case []uint32:
		return scalarValue(t.DType, d[0])
	case []uint8:
		return scalarValue(t.DType, d[0])
	case []bool:
		return scalarValue(t.DType, d[0])
	case []uint16:
		if t.DType == tensorio.Uint16 {
			return scalarValue(t.DType, d[0])
		}
	}
	return nil, fmt.Errorf("rank-0 %v values are not supported (onnxruntime_go cannot create them); give the value shape [1]", t.DType)
}

// DType returns the element type.
func (v *Value) DType() DType {
	if v.dev != nil {
		return v.dev.dt
	}
	return v.t.DType
}

// Shape returns the shape (shared; do not modify).
func (v *Value) Shape() []int64 {
	if v.dev != nil {
		return v.dev.shape
	}
	return v.t.Shape
}

// IsScalar reports whether the value has rank 0.
func (v *Value) IsScalar() bool { return len(v.Shape()) == 0 }

// Tensor returns the Go view of the value; it shares memory with ORT. It is nil for a Value in
// device memory.
func (v *Value) Tensor() *Tensor { return v.t }

// Device returns where the value's data lives: "cpu", or "cuda" for GPU memory.
func (v *Value) Device() string {
	if v.dev != nil {
		return v.dev.device
	}
	return DeviceCPU
}

// closed reports whether the value was closed.
func (v *Value) closed() bool {
	if v == nil {
		return true
	}
	if v.dev != nil {
		return v.dev.ptr == nil
	}
	return v.v == nil
}

// Scalar returns the element of a rank-0 value, or of a one-element value of any rank, as a
// float64.
func (v *Value) Scalar() (float64, error) {
	if err := v.hostAccess(); err != nil {
		return 0, err
	}
	if v.t.NumElements() != 1 {
		return 0, fmt.Errorf("value %v has %d elements, not one", v.t, v.t.NumElements())
	}
	f, err := v.t.AsFloat64()
	if err != nil {
		return 0, err
	}
	return f[0], nil
}

// SetScalar sets the element of a rank-0 value, or of a one-element value of any rank, converting
// x to the value's type (half types are rounded to nearest even).
func (v *Value) SetScalar(x float64) error {
	if err := v.hostAccess(); err != nil {
		return err
	}
	if v.t.NumElements() != 1 {
		return fmt.Errorf("value %v has %d elements, not one", v.t, v.t.NumElements())
	}
	switch d := v.t.Data.(type) {
	case []float32:
		d[0] = float32(x)
	case []float64:
		d[0] = x
	case []int64:
		d[0] = int64(x)
	case []int32:
		d[0] = int32(x)
	case []int16:
		d[0] = int16(x)
	case []int8:
		d[0] = int8(x)
	case []uint64:
		d[0] = uint64(x)
	case []uint32:
		d[0] = uint32(x)
	case []uint8:
		d[0] = uint8(x)
	case []bool:
		d[0] = x != 0
	case []uint16:
		switch v.t.DType {
		case tensorio.Float16:
			d[0] = tensorio.Float32ToFloat16(float32(x))
		case tensorio.BFloat16:
			d[0] = tensorio.Float32ToBFloat16(float32(x))
		default:
			d[0] = uint16(x)
		}
	}
	return nil
}

// CopyFrom copies src's elements into the value; dtype and shape must match.
func (v *Value) CopyFrom(src *Tensor) error {
	if err := v.hostAccess(); err != nil {
		return err
	}
	if err := src.Validate(); err != nil {
		return err
	}
	if src.DType != v.t.DType || !tensorio.SameShape(src.Shape, v.t.Shape) {
		return fmt.Errorf("cannot copy %v into value %v: dtype or shape differs", src, v.t)
	}
	dst, _ := v.t.Bytes()
	b, _ := src.Bytes()
	copy(dst, b)
	return nil
}

// hostAccess says why the value's data cannot be read or written from Go, or nil.
func (v *Value) hostAccess() error {
	if v.closed() {
		return errors.New("value is closed")
	}
	if v.t == nil {
		return fmt.Errorf("value %v is in %s memory; copy it with Kernels.Copy", v, v.Device())
	}
	return nil
}

// Close releases the ORT tensor. The Go data stays valid (a Value in ORT-allocated memory
// releases its memory). Closing twice is harmless.
func (v *Value) Close() error {
	if v == nil {
		return nil
	}
	if v.dev != nil {
		v.dev.release()
		v.t = nil
		return nil
	}
	if v.v == nil {
		return nil
	}
	err := v.v.Destroy()
	v.v = nil
	return err
}

// tensorFromOrt converts an ORT-allocated output to a Tensor (the data is copied into Go memory
// by onnxruntime_go) and releases the ORT value.
func tensorFromOrt(v ort.Value, want IOInfo) (*Tensor, error) {
	defer v.Destroy()
	shape := []int64(v.GetShape())
	if shape == nil {
		shape = []int64{}
	}
	var data any
	switch x := v.(type) {
	case *ort.Tensor[float32]:
		data = x.GetData()
	case *ort.Tensor[float64]:
		data = x.GetData()
	case *ort.Tensor[int64]:
		data = x.GetData()
	case *ort.Tensor[int32]:
		data = x.GetData()
	case *ort.Tensor[int16]:
		data = x.GetData()
	case *ort.Tensor[int8]:
		data = x.GetData()
	case *ort.Tensor[uint64]:
		data = x.GetData()
	case *ort.Tensor[uint32]:
		data = x.GetData()
	case *ort.Tensor[uint16]:
		data = x.GetData()
	case *ort.Tensor[uint8]:
		data = x.GetData()
	case *ort.Tensor[bool]:
		data = x.GetData()
	case *ort.CustomDataTensor:
		dt := DType(x.DataType())
		return nil, fmt.Errorf("output %q is %v with a shape that is not fixed in the model; such outputs cannot be fetched through onnxruntime_go, give it a fixed shape or bind a Value for it", want.Name, dt)
	default:
		return nil, fmt.Errorf("output %q is not a tensor (%T)", want.Name, v)
	}
	t := &Tensor{DType: want.DType, Shape: append([]int64{}, shape...), Data: data}
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("output %q: %w", want.Name, err)
	}
	return t, nil
}

// String describes the value, e.g. "float32[2 3]".
func (v *Value) String() string {
	if v.dev != nil {
		return fmt.Sprintf("%v%v", v.dev.dt, v.dev.shape)
	}
	return v.t.String()
}
