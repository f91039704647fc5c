package synth

import (
	"fmt"
	"math"
	"sort"
	"strconv"

	"github.com/skipgraph/skipgraph/graph"
	"github.com/skipgraph/skipgraph/graph/onnxio"
)

// Model file names, the keys of Result.Models.
const (
	// ModelCombined is the key of the combined model.
	ModelCombined = "model.onnx"
	// ModelText is the key of the text tower of a split export.
	ModelText = "text_model.onnx"
	// ModelVision is the key of the vision tower of a split export.
	ModelVision = "vision_model.onnx"
)

// Result is what Build generated.
type Result struct {
	// Config is the configuration with its defaults filled in.
	Config Config
	// Dims are the model's dimensions.
	Dims Dims
	// Models maps file names (ModelCombined, or ModelText and ModelVision) to models.
	Models map[string]*graph.Model
	// Truth is what the generator knows it wrote.
	Truth *Truth
}

// Build generates the model(s) described by cfg. Weights are lazy: they are generated when a
// tensor's data is first read.
func Build(cfg Config) (*Result, error) {
	cfg, d, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	res := &Result{Config: cfg, Dims: d, Models: map[string]*graph.Model{}, Truth: &Truth{
		Style: cfg.Style, Opset: cfg.Opset, Towers: map[string]*Tower{}, Params: map[string]*Param{},
		Buffers: map[string]map[string]string{},
	}}
	b := &builder{cfg: cfg, d: d, w: weightGen{seed: cfg.Seed}, truth: res.Truth}
	if cfg.Split {
		for _, key := range []string{ModelText, ModelVision} {
			b.start(key)
			if cfg.Style == StyleHF {
				b.hfSplit(key)
			} else {
				b.oaSplit(key)
			}
			m, err := b.finish()
			if err != nil {
				return nil, err
			}
			res.Models[key] = m
		}
	} else {
		b.start(ModelCombined)
		if cfg.Style == StyleHF {
			b.hfCombined()
		} else {
			b.oaCombined()
		}
		m, err := b.finish()
		if err != nil {
			return nil, err
		}
		res.Models[ModelCombined] = m
	}
	res.Truth.resolve()
	for _, bf := range b.buffers {
		if res.Truth.Buffers[bf.model] == nil {
			res.Truth.Buffers[bf.model] = map[string]string{}
		}
		res.Truth.Buffers[bf.model][bf.v.Name] = bf.role
	}
	return res, nil
}

type bufferRec struct {
	model, role string
	v           *graph.Value
}

// builder holds the state of one Build.
type builder struct {
	cfg     Config
	d       Dims
	w       weightGen
	truth   *Truth
	model   string
	e       *emitter
	buffers []bufferRec
	// one is the scalar 1 constant the HF vision embeddings emit and torch reuses for the text
	// tower's Trilu in a combined export.
	one *graph.Value
}

func (b *builder) start(model string) {
	b.model = model
	b.e = newEmitter("torch_jit", b.cfg.Opset)
	b.one = nil
}

// param adds a parameter initializer and records it in the truth. anonKind, when set, makes it an
// anonymous initializer named onnx::<anonKind>_N (torch's name for folded weights).
func (b *builder) param(canonical, torch, tower string, layer int, t *graph.Tensor, anonKind string, transposed bool, rows []int64) *graph.Value {
	var v *graph.Value
	if anonKind != "" {
		v = b.e.anonWeight(anonKind, t)
	} else {
		v = b.e.namedWeight(canonical, t)
	}
	if torch == "" {
		torch = canonical
	}
	if _, dup := b.truth.Params[canonical]; dup {
		panic("synth: parameter " + canonical + " added twice")
	}
	b.truth.Params[canonical] = &Param{Canonical: canonical, Torch: torch, Model: b.model, Transposed: transposed,
		Rows: rows, Tower: tower, Layer: layer, value: v}
	return v
}

// named adds a parameter under its torch name, in its torch layout.
func (b *builder) named(name, tower string, layer int, t *graph.Tensor) *graph.Value {
	return b.param(name, "", tower, layer, t, "", false, nil)
}

// matmulT adds a Linear weight of torch shape [out, in] as the anonymous transposed initializer
// [in, out] that a MatMul consumes.
func (b *builder) matmulT(name, tower string, layer, in, out int) *graph.Value {
	t := b.w.linear(name, []int64{int64(in), int64(out)}, in)
	return b.param(name, "", tower, layer, t, "MatMul", true, nil)
}

func (b *builder) addTower(t *Tower) { t.Model = b.model; b.truth.Towers[t.Name] = t }

// finish names what is left to name, orders the initializers as torch does, strips names when
// asked, and verifies the graph.
func (b *builder) finish() (*graph.Model, error) {
	e := b.e
	e.finishNames()
	g := e.g
	byValue := map[*graph.Value]*Param{}
	for _, p := range b.truth.Params {
		byValue[p.value] = p
	}
	rank := func(v *graph.Value) int {
		p := byValue[v]
		switch {
		case p == nil:
			return 3
		case p.Tower == "":
			return 0
		case p.Tower == TowerText:
			return 1
		}
		return 2
	}
	anon := map[*graph.Value]bool{}
	for _, v := range e.anonWeights {
		anon[v] = true
	}
	sort.SliceStable(g.Initializers, func(i, j int) bool {
		ai, aj := anon[g.Initializers[i]], anon[g.Initializers[j]]
		if ai != aj {
			return !ai
		}
		if ai {
			return false
		}
		return rank(g.Initializers[i]) < rank(g.Initializers[j])
	})
	if b.cfg.StripNames {
		k := 0
		for _, n := range g.Nodes() {
			n.Name = ""
			for _, o := range n.Outputs() {
				if o == nil || o.IsGraphOutput() {
					continue
				}
				k++
				if err := g.Rename(o, strconv.Itoa(k)); err != nil {
					return nil, err
				}
			}
		}
	}
	if err := g.Verify(); err != nil {
		return nil, fmt.Errorf("synth: generated %s does not verify: %w", b.model, err)
	}
	ir := int64(7)
	if b.cfg.Opset > 14 {
		ir = 8
	}
	m := &graph.Model{Graph: g, IRVersion: ir, Opsets: []graph.Opset{{Domain: "", Version: int64(b.cfg.Opset)}}}
	onnxio.SetProducer(m, "skipgraph-synth", b.cfg.Style)
	size := b.cfg.Size
	if size == "" {
		size = "custom"
	}
	onnxio.SetMetadata(m, "synth.style", b.cfg.Style)
	onnxio.SetMetadata(m, "synth.size", size)
	onnxio.SetMetadata(m, "synth.seed", strconv.FormatInt(b.cfg.Seed, 10))
	return m, nil
}

// ByValue returns the parameter held by an initializer value, or nil.
func (t *Truth) ByValue(v *graph.Value) *Param {
	for _, p := range t.Params {
		if p.value == v {
			return p
		}
	}
	return nil
}

// input adds a graph input.
func (b *builder) input(name string, elem graph.DType, dims ...graph.Dim) *graph.Value {
	v, err := b.e.g.AddInput(name, graph.Type{Elem: elem, Shape: dims, HasShape: true})
	if err != nil {
		panic(err)
	}
	return v
}

// output makes v a graph output of the given type.
func (b *builder) output(v *graph.Value, elem graph.DType, dims ...graph.Dim) {
	v.Type = graph.Type{Elem: elem, Shape: dims, HasShape: true}
	b.e.g.AddOutput(v)
}

// textBatch is the text batch dimension: fixed when Classes is set.
func (b *builder) textBatch(sym string) graph.Dim {
	if b.cfg.Classes > 0 {
		return graph.Fixed(int64(b.cfg.Classes))
	}
	return graph.Sym(sym)
}

func fixed(n int) graph.Dim { return graph.Fixed(int64(n)) }

// logitScale adds the logit_scale parameter (a scalar).
func (b *builder) logitScale() *graph.Value {
	return b.named("logit_scale", "", -1, graph.ScalarFloat(graph.Float, b.cfg.LogitScale))
}

// negInf32 is float32's lowest value, torch.finfo(torch.float32).min.
var negInf32 = -float64(math.MaxFloat32)
