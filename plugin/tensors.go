package plugin

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"sync"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/skipgraph/skipgraph/graph"
	"github.com/skipgraph/skipgraph/plugin/pluginpb"
	"github.com/skipgraph/skipgraph/tensorio"
)

// TensorReader reads the values of a model's initializers in chunks.
type TensorReader interface {
	// ReadTensor returns the raw little-endian bytes of elements [offset, offset+n) of the
	// initializer name, with 0 < n <= count (fewer when the tensor ends, or when count elements
	// would exceed MaxChunkBytes).
	ReadTensor(ctx context.Context, name string, offset, count int64) ([]byte, error)
}

type tensorsKey struct{}

// WithTensors returns a context from which strategies read weight values through r. The host
// attaches its model this way (WithTensors(ctx, ModelTensors(m))) before planning; in a plugin,
// Serve attaches a reader that asks the host.
func WithTensors(ctx context.Context, r TensorReader) context.Context {
	return context.WithValue(ctx, tensorsKey{}, r)
}

// TensorsFrom returns the reader attached to ctx, or nil.
func TensorsFrom(ctx context.Context) TensorReader {
	r, _ := ctx.Value(tensorsKey{}).(TensorReader)
	return r
}

// ModelTensors reads the initializers of m.
func ModelTensors(m *graph.Model) TensorReader { return modelTensors{m} }

type modelTensors struct{ m *graph.Model }

func (r modelTensors) ReadTensor(_ context.Context, name string, offset, count int64) ([]byte, error) {
	v := r.m.Graph.Value(name)
	if v == nil || v.Const == nil {
		return nil, fmt.Errorf("%q is not an initializer of the model", name)
	}
	t := v.Const
	size := int64(t.DType.Size())
	if size == 0 {
		return nil, fmt.Errorf("initializer %q has element type %s, which cannot be read in chunks", name, t.DType)
	}
	n := t.NumElements()
	if offset < 0 || offset > n || count < 0 {
		return nil, fmt.Errorf("initializer %q has %d elements; cannot read %d from %d", name, n, count, offset)
	}
	count = min(count, n-offset, MaxChunkBytes/size)
	raw, err := t.Bytes()
	if err != nil {
		return nil, fmt.Errorf("reading initializer %q: %w", name, err)
	}
	return raw[offset*size : (offset+count)*size], nil
}

// tensorServer serves a TensorReader as the Tensors service.
type tensorServer struct {
	pluginpb.UnimplementedTensorsServer
	r TensorReader
}

// Read implements pluginpb.TensorsServer.
func (t *tensorServer) Read(ctx context.Context, in *pluginpb.ReadRequest) (*pluginpb.ReadReply, error) {
	var req readRequest
	if err := decode(in.GetJson(), &req, true); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "malformed read request: %v", err)
	}
	if t.r == nil {
		return nil, status.Error(codes.Unavailable, "the host offers no tensor data for this call")
	}
	b, err := t.r.ReadTensor(ctx, req.Name, req.Offset, req.Count)
	if err != nil {
		return nil, status.Error(codes.NotFound, err.Error())
	}
	return &pluginpb.ReadReply{Data: b}, nil
}

// serveTensors serves a TensorReader as the Tensors service.
func serveTensors(s *grpc.Server, r TensorReader) {
	pluginpb.RegisterTensorsServer(s, &tensorServer{r: r})
}

// remoteTensors reads tensors from the host over the broker; it dials on first use.
type remoteTensors struct {
	broker *goplugin.GRPCBroker
	id     uint32
	once   sync.Once
	conn   *grpc.ClientConn
	err    error
}

func (r *remoteTensors) ReadTensor(ctx context.Context, name string, offset, count int64) ([]byte, error) {
	r.once.Do(func() { r.conn, r.err = r.broker.Dial(r.id) })
	if r.err != nil {
		return nil, fmt.Errorf("connecting to the host's tensor service: %w", r.err)
	}
	in, err := encode(readRequest{Name: name, Offset: offset, Count: count})
	if err != nil {
		return nil, err
	}
	out, err := pluginpb.NewTensorsClient(r.conn).Read(ctx, &pluginpb.ReadRequest{Json: in})
	if err != nil {
		return nil, fmt.Errorf("reading tensor %q: %s", name, status.Convert(err).Message())
	}
	return out.GetData(), nil
}

func (r *remoteTensors) close() {
	if r.conn != nil {
		r.conn.Close()
	}
}

// TensorChunk reads elements [offset, offset+count) of an initializer (fewer when capped, see
// TensorReader) from the reader attached to ctx.
func TensorChunk(ctx context.Context, name string, offset, count int64) ([]byte, error) {
	r := TensorsFrom(ctx)
	if r == nil {
		return nil, fmt.Errorf("no tensor data available for %q: the host attached no model to the context (plugin.WithTensors)", name)
	}
	return r.ReadTensor(ctx, name, offset, count)
}

// TensorBytes reads an initializer's whole data (raw little-endian), chunk by chunk. The
// initializer's type and shape are in the request's skeleton (Initializer).
func TensorBytes(ctx context.Context, req *Request, name string) ([]byte, error) {
	t := Initializer(req, name)
	if t == nil {
		return nil, fmt.Errorf("%q is not an initializer of the model", name)
	}
	n := int64(1)
	for _, d := range t.Dims {
		n *= d
	}
	size := int64(dtypeSize(t.DType))
	if size == 0 {
		return nil, fmt.Errorf("initializer %q has element type %s, which cannot be read", name, t.DType)
	}
	out := make([]byte, 0, n*size)
	for off := int64(0); off < n; {
		b, err := TensorChunk(ctx, name, off, n-off)
		if err != nil {
			return nil, err
		}
		if len(b) == 0 || int64(len(b))%size != 0 {
			return nil, fmt.Errorf("reading tensor %q: the host answered %d bytes at element %d", name, len(b), off)
		}
		out = append(out, b...)
		off += int64(len(b)) / size
	}
	return out, nil
}

// TensorFloat32s reads a floating-point initializer (float32, float16 or float64) as float32s.
func TensorFloat32s(ctx context.Context, req *Request, name string) ([]float32, error) {
	b, err := TensorBytes(ctx, req, name)
	if err != nil {
		return nil, err
	}
	t := Initializer(req, name)
	switch t.DType {
	case graph.Float.String():
		out := make([]float32, len(b)/4)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		return out, nil
	case graph.Float16.String():
		out := make([]float32, len(b)/2)
		for i := range out {
			out[i] = tensorio.Float16ToFloat32(binary.LittleEndian.Uint16(b[2*i:]))
		}
		return out, nil
	case graph.Double.String():
		out := make([]float32, len(b)/8)
		for i := range out {
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:])))
		}
		return out, nil
	}
	return nil, fmt.Errorf("initializer %q is %s, not floating point", name, t.DType)
}

// dtypeSize is the element size of a dtype named as in graph.DType.String, or 0.
func dtypeSize(name string) int {
	for d := graph.DType(0); d <= graph.BFloat16; d++ {
		if d.String() == name {
			return d.Size()
		}
	}
	return 0
}
