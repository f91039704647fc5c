package onnxio_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/graph/onnxio"
	"github.com/skipgraph/skipgraph/graph/onnxio/onnxpb"
	"google.golang.org/protobuf/proto"
)

// garbage returns named bad inputs and a fragment their error must contain.
func garbage(t testing.TB) []struct {
	name, want string
	data       []byte
} {
	x4 := []*onnxpb.ValueInfoProto{vi("x", 4)}
	y4 := []*onnxpb.ValueInfoProto{vi("y", 4)}
	w := &onnxpb.TensorProto{Name: proto.String("w"), Dims: []int64{4}, DataType: proto.Int32(1), RawData: make([]byte, 16)}
	random := make([]byte, 4096)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range random {
		random[i] = byte(r.Uint32())
	}
	cases := []struct {
		name, want string
		data       []byte
	}{
		{"empty", "empty", nil},
		{"random bytes", "", random},
		{"png header", "PNG", []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10")},
		{"jpeg header", "JPEG", []byte("\xff\xd8\xff\xe0\x00\x10JFIF\x00")},
		{"text", "text", []byte("hello, this is not a model\n")},
		{"cycle", "cycle", craft(t, []*onnxpb.NodeProto{
			node("Relu", []string{"b"}, []string{"a"}), node("Relu", []string{"a"}, []string{"b"}), node("Add", []string{"x", "b"}, []string{"y"}),
		}, nil, x4, y4)},
		{"undefined input", `"nope"`, craft(t, []*onnxpb.NodeProto{node("Add", []string{"x", "nope"}, []string{"y"})}, nil, x4, y4)},
		{"duplicate output", "defined twice", craft(t, []*onnxpb.NodeProto{
			node("Relu", []string{"x"}, []string{"y"}), node("Neg", []string{"x"}, []string{"y"}),
		}, nil, x4, y4)},
		{"duplicate initializer", "defined twice", craft(t, []*onnxpb.NodeProto{node("Add", []string{"x", "w"}, []string{"y"})},
			[]*onnxpb.TensorProto{w, w}, x4, y4)},
		{"output nobody produces", `"z"`, craft(t, []*onnxpb.NodeProto{node("Relu", []string{"x"}, []string{"y"})}, nil, x4,
			[]*onnxpb.ValueInfoProto{vi("z", 4)})},
		{"unknown data type", "data type 99", reluModel(t, &onnxpb.TensorProto{Name: proto.String("w"), Dims: []int64{4}, DataType: proto.Int32(99), RawData: make([]byte, 16)})},
		{"short raw data", "needs 16 bytes", reluModel(t, &onnxpb.TensorProto{Name: proto.String("w"), Dims: []int64{4}, DataType: proto.Int32(1), RawData: make([]byte, 15)})},
		{"negative dimension", "negative", reluModel(t, &onnxpb.TensorProto{Name: proto.String("w"), Dims: []int64{-4}, DataType: proto.Int32(1)})},
		{"huge dimensions", "too large", reluModel(t, &onnxpb.TensorProto{Name: proto.String("w"), Dims: []int64{1 << 40, 1 << 40}, DataType: proto.Int32(1)})},
		{"no graph", "no graph", func() []byte {
			b, _ := proto.Marshal(&onnxpb.ModelProto{IrVersion: proto.Int64(8)})
			return b
		}()},
	}
	if fix := fixtureBytes(t); fix != nil {
		for _, frac := range []float64{0.001, 0.01, 0.1, 0.33, 0.5, 0.9, 0.999} {
			n := int(float64(len(fix)) * frac)
			cases = append(cases, struct {
				name, want string
				data       []byte
			}{fmt.Sprintf("fixture cut at %d of %d", n, len(fix)), "", fix[:n]})
		}
		cases = append(cases, struct {
			name, want string
			data       []byte
		}{"fixture minus last byte", "", fix[:len(fix)-1]})
	}
	return cases
}

func TestGarbageRefused(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range garbage(t) {
		t.Run(tc.name, func(t *testing.T) {
			check := func(how string, err error) {
				t.Helper()
				if err == nil {
					t.Fatalf("%s: no error", how)
				}
				msg := err.Error()
				if !errs.IsInput(err) || strings.Contains(msg, "\n") || !strings.Contains(msg, tc.want) {
					t.Fatalf("%s: error %q (input error %v), want one line containing %q", how, msg, errs.IsInput(err), tc.want)
				}
			}
			_, err := onnxio.Decode(tc.data, dir)
			check("Decode", err)
			p := filepath.Join(dir, "bad.onnx")
			if err := os.WriteFile(p, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err = onnxio.Load(p)
			check("Load", err)
			if !strings.Contains(err.Error(), p) {
				t.Errorf("Load error %q does not name the file", err)
			}
		})
	}
}

func TestLoadMissingAndFolder(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{filepath.Join(dir, "missing.onnx"), dir} {
		_, err := onnxio.Load(p)
		if err == nil || !errs.IsInput(err) || !strings.Contains(err.Error(), p) {
			t.Errorf("Load(%s): %v", p, err)
		}
	}
}
