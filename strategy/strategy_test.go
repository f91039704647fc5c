package strategy

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/skipgraph/skipgraph/clip"
	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/graph"
)

func TestResolveArgs(t *testing.T) {
	info := Info{Name: "s", Params: []Param{
		{Name: "start", Type: "int", Default: "6"},
		{Name: "ratio", Type: "float", Default: "0.5"},
		{Name: "on", Type: "bool", Default: "true"},
		{Name: "label", Type: "string", Default: ""},
	}}
	cases := []struct {
		given map[string]string
		want  map[string]string
		err   string
	}{
		{nil, map[string]string{"start": "6", "ratio": "0.5", "on": "true", "label": ""}, ""},
		{map[string]string{"start": "2", "label": "x"}, map[string]string{"start": "2", "ratio": "0.5", "on": "true", "label": "x"}, ""},
		{map[string]string{"start": "two"}, nil, `start="two" is not a valid int`},
		{map[string]string{"ratio": "half"}, nil, "not a valid float"},
		{map[string]string{"on": "maybe"}, nil, "not a valid bool"},
		{map[string]string{"stop": "1"}, nil, `has no parameter "stop" (it has: label, on, ratio, start)`},
	}
	for _, tc := range cases {
		got, err := ResolveArgs(info, tc.given)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errs.IsInput(err) {
				t.Errorf("%v: err %v, want input error %q", tc.given, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%v: %v", tc.given, err)
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("%v: %s=%q, want %q", tc.given, k, got[k], v)
			}
		}
	}
}

func TestMerge(t *testing.T) {
	p := &Plan{Freeze: []string{"a"}, Passes: []PassCall{{Name: "x"}}}
	p.Merge(&Plan{Freeze: []string{"b"}, Train: []string{"c"}, StopGradients: []Boundary{{Tower: "text", Layer: 1, Value: "v"}},
		Patch: &Patch{Nodes: []PatchNode{{Name: "n"}}}})
	p.Merge(nil)
	if len(p.Freeze) != 2 || len(p.Train) != 1 || len(p.StopGradients) != 1 || len(p.Passes) != 1 || p.Patch == nil || len(p.Patch.Nodes) != 1 {
		t.Fatalf("merged plan %+v", p)
	}
}

func TestSkeleton(t *testing.T) {
	g := graph.New("g")
	x, _ := g.AddInput("x", graph.TensorType(graph.Float, 2, 3))
	small, _ := g.AddInitializer("small", graph.FromFloat32([]int64{3}, []float32{1, 2, 3}))
	big, _ := g.AddInitializer("big", graph.FromFloat32([]int64{3, 100}, make([]float32, 300)))
	n := g.NewNode("MatMul", "", "mm", []*graph.Value{x, big}, []string{"y"})
	a := g.NewNode("Add", "", "", []*graph.Value{n.Output(0), small}, []string{"z"}, graph.IntAttr("unused", 4))
	g.AddOutput(a.Output(0))
	s := SkeletonOf(&graph.Model{Graph: g, Opsets: []graph.Opset{{Version: 17}}})
	if len(s.Initializers) != 2 || s.Initializers[0].Floats == nil || s.Initializers[1].Floats != nil || s.Initializers[1].Dims[1] != 100 {
		t.Fatalf("initializers %+v: small ones carry data, big ones only metadata", s.Initializers)
	}
	if len(s.Nodes) != 2 || s.Nodes[1].Attrs["unused"] != "4" || s.Inputs[0].Type != "float32[2,3]" {
		t.Fatalf("skeleton %+v", s)
	}
	if _, err := json.Marshal(s); err != nil {
		t.Fatal(err)
	}
}

func TestPlanTrainable(t *testing.T) {
	st := &clip.Structure{Params: []*clip.Param{
		{Initializer: "a"}, {Initializer: "b"}, {Initializer: "scale", Role: clip.RoleLogitScale},
	}}
	for _, tc := range []struct {
		name string
		plan Plan
		want []string
	}{
		{"default", Plan{}, []string{"a", "b"}},
		{"freeze", Plan{Freeze: []string{"a"}}, []string{"b"}},
		{"train the scale", Plan{Train: []string{"scale"}}, []string{"a", "b", "scale"}},
		{"freeze wins", Plan{Freeze: []string{"a", "scale"}, Train: []string{"a", "scale"}}, []string{"b"}},
	} {
		got := slices.Sorted(maps.Keys(tc.plan.Trainable(st)))
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: trainable %v, want %v", tc.name, got, tc.want)
		}
	}
}
