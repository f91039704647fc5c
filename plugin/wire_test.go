package plugin

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	goplugin "github.com/hashicorp/go-plugin"

	"github.com/skipgraph/skipgraph/clip"
	"github.com/skipgraph/skipgraph/plugins/lskip"
	"github.com/skipgraph/skipgraph/strategy"
	"github.com/skipgraph/skipgraph/synth"
)

// TestRequestSize: the plan request of a ViT-L/14-size export (skeleton and structure) stays far
// under gRPC's 4 MiB default message limit, and decodes back to what was sent.
func TestRequestSize(t *testing.T) {
	res, err := synth.Build(synth.Config{Style: "hf", Size: "vit-l-14", Opset: 17})
	if err != nil {
		t.Fatal(err)
	}
	m := res.Models[synth.ModelCombined]
	st, err := clip.Discover(m)
	if err != nil {
		t.Fatal(err)
	}
	args, _ := strategy.ResolveArgs(lskip.Strategy{}.Info(), nil)
	req := planRequest{Request: &strategy.Request{Skeleton: strategy.SkeletonOf(m), Structure: st, Args: args}}
	b, err := encode(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ViT-L/14 plan request: %d nodes, %d KiB JSON, %d KiB on the wire", len(req.Request.Skeleton.Nodes), len(raw)>>10, len(b)>>10)
	if len(b) > 1<<20 {
		t.Errorf("plan request is %d bytes on the wire; want under 1 MiB", len(b))
	}
	var back planRequest
	if err := decode(b, &back, true); err != nil {
		t.Fatal(err)
	}
	p1, err := lskip.Strategy{}.Plan(t.Context(), req.Request)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := lskip.Strategy{}.Plan(t.Context(), back.Request)
	if err != nil {
		t.Fatal(err)
	}
	j1, _ := json.Marshal(p1)
	j2, _ := json.Marshal(p2)
	if !bytes.Equal(j1, j2) {
		t.Errorf("LSkip plans differently from the decoded request")
	}
}

func TestDecode(t *testing.T) {
	defer func(n int) { maxDecoded = n }(maxDecoded)
	maxDecoded = 1 << 20
	var bomb bytes.Buffer
	w := gzip.NewWriter(&bomb)
	w.Write([]byte(`{"freeze":["`))
	w.Write(bytes.Repeat([]byte("a"), maxDecoded))
	w.Write([]byte(`"]}`))
	w.Close()
	for _, tc := range []struct {
		name string
		in   []byte
		err  string
	}{
		{"plain", []byte(`{"freeze":["w"]}`), ""},
		{"unknown field", []byte(`{"freez":["w"]}`), "unknown field"},
		{"trailing", []byte(`{} {}`), "trailing data"},
		{"wrong type", []byte(`{"train":1}`), "cannot unmarshal"},
		{"bad gzip", []byte{0x1f, 0x8b, 0}, "unexpected EOF"},
		{"bomb", bomb.Bytes(), "larger than 1 MiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p strategy.Plan
			err := decode(tc.in, &p, true)
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("decode: %v, want %q", err, tc.err)
			}
		})
	}
}

func TestCheckPlan(t *testing.T) {
	skel := &strategy.Skeleton{
		Inputs:       []strategy.SkelValue{{Name: "x"}},
		Initializers: []strategy.SkelTensor{{Name: "w", DType: "float32", Dims: []int64{2, 2}}},
		Nodes: []strategy.SkelNode{
			{Name: "mm", OpType: "MatMul", Inputs: []string{"x", "w"}, Outputs: []string{"y"}},
			{OpType: "Relu", Inputs: []string{"y"}, Outputs: []string{"z"}},
		},
	}
	one := int64(1)
	for _, tc := range []struct {
		name string
		plan *strategy.Plan
		err  string
	}{
		{"empty", &strategy.Plan{}, ""},
		{"nil", nil, "no plan"},
		{"freeze", &strategy.Plan{Freeze: []string{"w"}, Train: []string{"w"}}, ""},
		{"freeze unknown", &strategy.Plan{Freeze: []string{"v"}}, `parameter "v" is not an initializer`},
		{"train a value", &strategy.Plan{Train: []string{"y"}}, `parameter "y" is not an initializer`},
		{"boundary", &strategy.Plan{StopGradients: []strategy.Boundary{{Tower: "text", Value: "y"}}}, ""},
		{"boundary tower", &strategy.Plan{StopGradients: []strategy.Boundary{{Tower: "audio", Value: "y"}}}, `tower "audio"`},
		{"boundary value", &strategy.Plan{StopGradients: []strategy.Boundary{{Tower: "text", Value: "q"}}}, `"q" is not a value`},
		{"patch", &strategy.Plan{Patch: &strategy.Patch{
			Nodes:  []strategy.PatchNode{{Name: "id", OpType: "Identity", Inputs: []string{"y"}, Outputs: []string{"y2"}}, {Name: "n", OpType: "Neg", Inputs: []string{"y2"}, Outputs: []string{"y3"}, Attrs: []strategy.PatchAttr{{Name: "a", Int: &one}}}},
			Rewire: []strategy.Rewire{{Node: "@z", Input: 0, Value: "y3"}},
		}}, ""},
		{"patch reads nothing", patch(strategy.PatchNode{Name: "n", OpType: "Neg", Inputs: []string{"q"}, Outputs: []string{"o"}}), `reads "q", which does not exist`},
		{"patch redefines", patch(strategy.PatchNode{Name: "n", OpType: "Neg", Inputs: []string{"x"}, Outputs: []string{"y"}}), `redefine existing value "y"`},
		{"patch domain", patch(strategy.PatchNode{Name: "n", OpType: "Gelu", Domain: "com.microsoft", Inputs: []string{"x"}, Outputs: []string{"o"}}), `domain "com.microsoft"`},
		{"patch unknown op", patch(strategy.PatchNode{Name: "evil", OpType: "EvilOp", Inputs: []string{"x"}, Outputs: []string{"o"}}), `patch node "evil": EvilOp is not an ONNX operator`},
		{"patch no op", patch(strategy.PatchNode{Name: "n", Inputs: []string{"x"}, Outputs: []string{"o"}}), "no op type"},
		{"patch attr", patch(strategy.PatchNode{Name: "n", OpType: "Neg", Inputs: []string{"x"}, Outputs: []string{"o"}, Attrs: []strategy.PatchAttr{{Name: "a"}}}), "exactly one value"},
		{"rewire node", &strategy.Plan{Patch: &strategy.Patch{Rewire: []strategy.Rewire{{Node: "nope", Value: "x"}}}}, `node "nope", which does not exist`},
		{"rewire input", &strategy.Plan{Patch: &strategy.Patch{Rewire: []strategy.Rewire{{Node: "mm", Input: 2, Value: "x"}}}}, "has 2 inputs"},
		{"rewire value", &strategy.Plan{Patch: &strategy.Patch{Rewire: []strategy.Rewire{{Node: "mm", Value: "q"}}}}, `to "q", which does not exist`},
		{"rewire cycle", &strategy.Plan{Patch: &strategy.Patch{Rewire: []strategy.Rewire{{Node: "mm", Input: 0, Value: "z"}}}}, "patch makes a cycle through node"},
		{"rewire self", &strategy.Plan{Patch: &strategy.Patch{Rewire: []strategy.Rewire{{Node: "mm", Input: 1, Value: "y"}}}}, "patch makes a cycle through node \"mm\""},
		{"patch node cycle", &strategy.Plan{Patch: &strategy.Patch{
			Nodes:  []strategy.PatchNode{{Name: "n", OpType: "Neg", Inputs: []string{"z"}, Outputs: []string{"y3"}}},
			Rewire: []strategy.Rewire{{Node: "mm", Input: 0, Value: "y3"}},
		}}, "patch makes a cycle"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckPlan(skel, tc.plan)
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("CheckPlan: %v, want %q", err, tc.err)
			}
		})
	}
}

func patch(n strategy.PatchNode) *strategy.Plan {
	return &strategy.Plan{Patch: &strategy.Patch{Nodes: []strategy.PatchNode{n}}}
}

// TestInProcess drives the wire shim in one process (go-plugin's TestPluginGRPCConn): LSkip's plan
// crosses unchanged, and a strategy reads a tensor through the broker.
func TestInProcess(t *testing.T) {
	res, err := synth.Build(synth.Config{Style: "hf", Size: "tiny", Opset: 17})
	if err != nil {
		t.Fatal(err)
	}
	m := res.Models[synth.ModelCombined]
	st, err := clip.Discover(m)
	if err != nil {
		t.Fatal(err)
	}
	args, _ := strategy.ResolveArgs(lskip.Strategy{}.Info(), nil)
	req := &strategy.Request{Skeleton: strategy.SkeletonOf(m), Structure: st, Args: args, Prior: &strategy.Plan{}}
	for _, tc := range []struct {
		name string
		impl strategy.Strategy
	}{
		{"lskip", lskip.Strategy{}},
		{"reader", reader{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, _ := goplugin.TestPluginGRPCConn(t, false, map[string]goplugin.Plugin{PluginName: &GRPCPlugin{Impl: tc.impl}})
			defer client.Close()
			raw, err := client.Dispense(PluginName)
			if err != nil {
				t.Fatal(err)
			}
			r := raw.(*Remote)
			info, err := r.Info(t.Context())
			if err != nil || info.Name != tc.impl.Info().Name {
				t.Fatalf("Info: %+v, %v", info, err)
			}
			got, err := r.Plan(t.Context(), req, ModelTensors(m))
			if err != nil {
				t.Fatal(err)
			}
			want, err := tc.impl.Plan(WithTensors(t.Context(), ModelTensors(m)), req)
			if err != nil {
				t.Fatal(err)
			}
			j1, _ := json.Marshal(got)
			j2, _ := json.Marshal(want)
			if !bytes.Equal(j1, j2) {
				t.Errorf("plan across the wire:\n%s\nin-process:\n%s", j1, j2)
			}
		})
	}
}

// reader reports the first values of the first layer's q projection weight.
type reader struct{}

func (reader) Info() strategy.Info { return strategy.Info{Name: "reader", Version: "0"} }

func (reader) Plan(ctx context.Context, req *strategy.Request) (*strategy.Plan, error) {
	l, err := Layer(req, Vision, 0)
	if err != nil {
		return nil, err
	}
	v, err := TensorFloat32s(ctx, req, l.Attention.Q.Weight)
	if err != nil {
		return nil, err
	}
	return &strategy.Plan{Params: map[string]string{"first": fmt.Sprint(v[:3]), "n": fmt.Sprint(len(v))}}, nil
}
