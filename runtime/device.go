package runtime

import (
	"fmt"
	"sync"
	"unsafe"

	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/graph/onnxio/onnxpb"
	"github.com/skipgraph/skipgraph/tensorio"
	"google.golang.org/protobuf/proto"
)

// devValue is a tensor in memory an ORT allocator handed out.
type devValue struct {
	ptr    unsafe.Pointer // OrtValue*
	dt     DType
	shape  []int64
	device string
	mem    *Memory
}

func (d *devValue) release() {
	if d.ptr == nil {
		return
	}
	releaseValue(d.ptr)
	d.ptr = nil
	if d.mem != nil {
		d.mem.mu.Lock()
		d.mem.live--
		d.mem.mu.Unlock()
	}
}

// Memory allocates tensors in a session's device memory (GPU memory for a CUDA session, ORT's
// CPU allocator for a CPU one) with the session's own allocator. Values it makes must be closed
// before the Memory, and the Memory before its session.
type Memory struct {
	sess   *Session
	device string
	mi     unsafe.Pointer // OrtMemoryInfo*
	alloc  unsafe.Pointer // OrtAllocator*

	mu   sync.Mutex
	live int
}

// ORT's memory-info names and enums (onnxruntime_c_api.h: OrtAllocatorType, OrtMemType).
const (
	memInfoCPU     = "Cpu"
	memInfoCUDA    = "Cuda"
	allocDevice    = 0 // OrtDeviceAllocator
	memTypeDefault = 0 // OrtMemTypeDefault
)

// NewMemory returns an allocator of the session's device.
func (s *Session) NewMemory(deviceID int) (*Memory, error) {
	if s.sess == nil {
		return nil, fmt.Errorf("model %s: session is closed", s.name)
	}
	if err := capi(); err != nil {
		return nil, err
	}
	name := memInfoCPU
	if s.device == DeviceCUDA {
		name = memInfoCUDA
	} else {
		deviceID = 0
	}
	sp, err := sessionPtr(s.sess)
	if err != nil {
		return nil, fmt.Errorf("model %s: %s", s.name, err)
	}
	m := &Memory{sess: s, device: s.device}
	s.mu.Lock()
	s.memories = append(s.memories, m)
	s.mu.Unlock()
	if m.mi, err = createMemoryInfo(name, allocDevice, deviceID, memTypeDefault); err != nil {
		return nil, fmt.Errorf("model %s: memory info %s:%d: %s", s.name, name, deviceID, oneLine(err))
	}
	if m.alloc, err = createAllocator(sp, m.mi); err != nil {
		releaseMemoryInfo(m.mi)
		return nil, fmt.Errorf("model %s: %s allocator: %s", s.name, s.device, oneLine(err))
	}
	return m, nil
}

// Device returns "cpu" or "cuda".
func (m *Memory) Device() string { return m.device }

// New returns an uninitialised tensor of the given type and shape in the device's memory. On
// the CPU its Tensor view reads and writes the memory (float32 and int64 tensors).
func (m *Memory) New(dt DType, shape ...int64) (*Value, error) {
	if m.alloc == nil {
		return nil, fmt.Errorf("memory of %s is closed", m.sess.name)
	}
	for _, d := range shape {
		if d < 0 {
			return nil, fmt.Errorf("cannot allocate %v%v: negative dimension", dt, shape)
		}
	}
	ptr, err := createTensor(m.alloc, shape, int(dt))
	if err != nil {
		return nil, errs.Wrap(err, "allocating %v%v in %s memory: %s", dt, shape, m.device, oneLine(err))
	}
	v := &Value{dev: &devValue{ptr: ptr, dt: dt, shape: append([]int64{}, shape...), device: m.device, mem: m}}
	m.mu.Lock()
	m.live++
	m.mu.Unlock()
	if m.device == DeviceCPU {
		n, _ := tensorio.NumElementsOf(shape)
		if data, err := tensorData(ptr); err == nil && n > 0 {
			switch dt {
			case tensorio.Float32:
				v.t = &Tensor{DType: dt, Shape: v.dev.shape, Data: unsafe.Slice((*float32)(data), n)}
			case tensorio.Int64:
				v.t = &Tensor{DType: dt, Shape: v.dev.shape, Data: unsafe.Slice((*int64)(data), n)}
			}
		}
	}
	return v, nil
}

// Close says the memory is no longer used. Values still open are an error: close them first.
// The allocator itself is released when the session closes, after its bindings, which may
// still refer to the values' memory.
func (m *Memory) Close() error {
	m.mu.Lock()
	live := m.live
	m.mu.Unlock()
	if live > 0 {
		return fmt.Errorf("memory of %s: %d values still open; close them before the memory", m.sess.name, live)
	}
	return nil
}

// release frees the allocator (from Session.Close).
func (m *Memory) release() {
	if m.alloc == nil {
		return
	}
	releaseAllocator(m.alloc)
	releaseMemoryInfo(m.mi)
	m.alloc, m.mi = nil, nil
}

// Kernels moves and gathers tensors on one device with small ONNX Runtime sessions (Identity,
// Gather, Concat), so data reaches device memory without a host round trip and any copy
// between host and device goes through ORT. Not safe for concurrent use.
type Kernels struct {
	opts  Options
	sess  map[string]*Session
	binds map[string]*Binding
}

// NewKernels returns kernels running with the given session options (their Device decides
// where they run).
func NewKernels(opts *Options) *Kernels {
	k := &Kernels{sess: map[string]*Session{}, binds: map[string]*Binding{}}
	if opts != nil {
		k.opts = *opts
		k.opts.ProfilePrefix = ""
	}
	return k
}

// run runs the kernel named key (built by model on first use) with the given inputs and output.
func (k *Kernels) run(key string, model func() []byte, ins map[string]*Value, out *Value) error {
	b := k.binds[key]
	if b == nil {
		s, err := NewSessionFromBytes("kernel "+key, model(), &k.opts)
		if err != nil {
			return err
		}
		if b, err = s.NewBinding(); err != nil {
			s.Close()
			return err
		}
		k.sess[key], k.binds[key] = s, b
	}
	for name, v := range ins {
		if err := b.BindInput(name, v); err != nil {
			return err
		}
	}
	// The binding lets go of the values after the run, so that it never holds memory their
	// owners release.
	defer b.clear()
	if err := b.BindOutput("y", out); err != nil {
		return err
	}
	return b.Run()
}

// Copy copies src into dst (same dtype and shape) wherever each lives: host to device, device
// to host, or within a device.
func (k *Kernels) Copy(dst, src *Value) error {
	if dst.DType() != src.DType() || !tensorio.SameShape(dst.Shape(), src.Shape()) {
		return fmt.Errorf("copy: %v into %v: dtype or shape differs", src, dst)
	}
	dt := src.DType()
	return k.run(fmt.Sprintf("copy.%d", dt), func() []byte {
		return kernelModel("Identity", []*onnxpb.ValueInfoProto{anyTensor("x", dt)}, dt, nil)
	}, map[string]*Value{"x": src}, dst)
}

// Gather writes src's slices at the indices idx (int64, one dimension) along axis into dst.
func (k *Kernels) Gather(dst, src, idx *Value, axis int) error {
	dt := src.DType()
	return k.run(fmt.Sprintf("gather.%d.%d", dt, axis), func() []byte {
		return kernelModel("Gather", []*onnxpb.ValueInfoProto{anyTensor("x", dt), anyTensor("i", tensorio.Int64)}, dt,
			[]*onnxpb.AttributeProto{intAttribute("axis", int64(axis))})
	}, map[string]*Value{"x": src, "i": idx}, dst)
}

// Concat joins srcs along axis into dst.
func (k *Kernels) Concat(dst *Value, srcs []*Value, axis int) error {
	if len(srcs) == 0 {
		return fmt.Errorf("concat: nothing to join")
	}
	dt := srcs[0].DType()
	ins := map[string]*Value{}
	var infos []*onnxpb.ValueInfoProto
	for i, s := range srcs {
		name := fmt.Sprintf("x%d", i)
		ins[name] = s
		infos = append(infos, anyTensor(name, dt))
	}
	return k.run(fmt.Sprintf("concat.%d.%d.%d", dt, axis, len(srcs)), func() []byte {
		return kernelModel("Concat", infos, dt, []*onnxpb.AttributeProto{intAttribute("axis", int64(axis))})
	}, ins, dst)
}

// Close releases the kernels' sessions.
func (k *Kernels) Close() error {
	for key, s := range k.sess {
		s.Close()
		delete(k.sess, key)
		delete(k.binds, key)
	}
	return nil
}

// kernelModel is a one-node model: y = op(inputs...), every value of unknown shape.
func kernelModel(op string, ins []*onnxpb.ValueInfoProto, out DType, attrs []*onnxpb.AttributeProto) []byte {
	names := make([]string, len(ins))
	for i, in := range ins {
		names[i] = in.GetName()
	}
	m := &onnxpb.ModelProto{
		IrVersion:    proto.Int64(8),
		ProducerName: proto.String("skipgraph"),
		OpsetImport:  []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(17)}},
		Graph: &onnxpb.GraphProto{
			Name:   proto.String(op),
			Node:   []*onnxpb.NodeProto{{OpType: proto.String(op), Input: names, Output: []string{"y"}, Attribute: attrs}},
			Input:  ins,
			Output: []*onnxpb.ValueInfoProto{anyTensor("y", out)},
		},
	}
	b, err := proto.Marshal(m)
	if err != nil {
		panic(fmt.Sprintf("marshalling the %s kernel: %v", op, err))
	}
	return b
}

// anyTensor describes a tensor input or output of any shape.
func anyTensor(name string, dt DType) *onnxpb.ValueInfoProto {
	return &onnxpb.ValueInfoProto{
		Name: proto.String(name),
		Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(int32(dt))}}},
	}
}

func intAttribute(name string, v int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(v)}
}
