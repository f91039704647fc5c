package bundle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/skipgraph/skipgraph/clip"
	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/graph"
	"github.com/skipgraph/skipgraph/graph/onnxio"
	"github.com/skipgraph/skipgraph/internal/safeio"
	"github.com/skipgraph/skipgraph/rewrite"
	"github.com/skipgraph/skipgraph/rewrite/classsel"
	"github.com/skipgraph/skipgraph/rewrite/grad"
	"github.com/skipgraph/skipgraph/strategy"
)

// StrategySpec is one strategy to apply with its arguments (not yet resolved).
type StrategySpec struct {
	Strategy strategy.Strategy
	Args     map[string]string
}

// Options configure Convert.
type Options struct {
	// Strategies are applied in order; their plans are merged.
	Strategies []StrategySpec
	// Optimizer is written into train_step.onnx (default: DefaultSGD).
	Optimizer rewrite.OptimizerConfig
	// LR gives each group's default learning rate (recorded in the manifest).
	LR map[string]float64
	// EmitGrads adds each gradient as an output <name>_grad.
	EmitGrads bool
	// Precision is the train step's compute precision: fp32 (default), fp16 or bf16 (float32
	// master weights and optimizer state either way; see precision.go). fp16 implies
	// LossScaling.
	Precision string
	// LossScaling adds dynamic loss scaling (loss_scale inputs and outputs) at any precision.
	LossScaling bool
	// Force replaces an existing output directory.
	Force bool
	// AfterPass, when set, is called after every pass of every pipeline with the graph's key
	// (Pipelines) and the model as that pass left it.
	AfterPass func(graphKey GraphKey, p *rewrite.Pass, m *graph.Model) error
	// DumpAfter names a pass after which the train graph is dumped to DumpTo.
	DumpAfter string
	DumpTo    io.Writer
	// Logf reports progress; nil discards.
	Logf func(format string, args ...any)
}

// DefaultLR are the paper's learning rates: text tower 2e-5, image tower 5e-6.
var DefaultLR = map[string]float64{"text": 2e-5, "vision": 5e-6}

// Source is a loaded source model and its structure.
type SourceModel struct {
	// Model is the (combined) model.
	Model *graph.Model
	// Structure is what discovery found.
	Structure *clip.Structure
	// hashes yields the source files with their sha256, computed in the background while the
	// bundle is built (see SourceFiles).
	hashes func() ([]SourceFile, error)
	// paths are the source files as given.
	paths []string
	// SplitNames maps the joined model's initializers to the split files (split exports only).
	SplitNames map[string]SplitName
	// SourceDTypes records the initializers that were float16 or bfloat16 in the source: the
	// model is upcast to float32 for training, and export writes the weights back in these.
	SourceDTypes map[string]graph.DType
}

// LoadSource loads a CLIP export: a model file, a folder holding model.onnx, or a folder holding
// a split export (vision_model.onnx and text_model.onnx, also under onnx/), whose towers are
// joined into one model with a CLIP head (default logit scale).
func LoadSource(path string) (*SourceModel, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, errs.Input("%s: %w", path, safeio.PathCause(err))
	}
	if st.IsDir() {
		if v, t, ok := findSplit(path); ok {
			return loadSplit(v, t)
		}
		for _, name := range []string{"model.onnx", filepath.Join("onnx", "model.onnx")} {
			if _, err := os.Stat(filepath.Join(path, name)); err == nil {
				return LoadSource(filepath.Join(path, name))
			}
		}
		return nil, errs.Input("%s: no model.onnx, nor vision_model.onnx with text_model.onnx, in this folder; pass the .onnx file", path)
	}
	m, err := onnxio.Load(path)
	if err != nil {
		return nil, err
	}
	if err := checkOps(m, path); err != nil {
		return nil, err
	}
	dtypes, err := upcastSource(m, path)
	if err != nil {
		return nil, err
	}
	s, err := clip.Discover(m)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &SourceModel{Model: m, Structure: s, SourceDTypes: dtypes, hashes: hashInBackground(path), paths: []string{path}}, nil
}

// SourceFiles returns the source files with their sizes and sha256, waiting for the hashing
// that LoadSource started.
func (s *SourceModel) SourceFiles() ([]SourceFile, error) {
	if s.hashes == nil {
		return nil, nil
	}
	return s.hashes()
}

// hashInBackground starts hashing the files and returns a function that waits for the result
// (and returns it again on later calls).
func hashInBackground(paths ...string) func() ([]SourceFile, error) {
	type result struct {
		files []SourceFile
		err   error
	}
	ch := make(chan result, 1)
	go func() {
		var r result
		for _, p := range paths {
			f, err := hashFile(p)
			if err != nil {
				r.err = err
				break
			}
			r.files = append(r.files, f)
		}
		ch <- r
	}()
	return sync.OnceValues(func() ([]SourceFile, error) {
		r := <-ch
		return r.files, r.err
	})
}

func hashFile(path string) (SourceFile, error) {
	f, err := safeio.Open(path)
	if err != nil {
		return SourceFile{}, errs.Input("%s: %w", path, safeio.PathCause(err))
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return SourceFile{}, fmt.Errorf("%s: %w", path, err)
	}
	abs, _ := filepath.Abs(path)
	return SourceFile{Path: abs, SHA256: hex.EncodeToString(h.Sum(nil)), Size: n}, nil
}

// Convert writes the bundle of src to dir, through a temporary folder renamed into place.
func Convert(ctx context.Context, src *SourceModel, dir string, opts Options) (*Manifest, error) {
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if opts.Optimizer.Kind == "" {
		opts.Optimizer = rewrite.DefaultSGD
	}
	if err := opts.Optimizer.Validate(); err != nil {
		return nil, errs.AsInput(err)
	}
	if len(opts.Strategies) == 0 {
		return nil, errs.Input("no strategy given (use --strategy full, lskip, cskip or lskip,cskip)")
	}
	if err := (safeio.Output{Path: dir, What: "a bundle", Inputs: src.paths, Force: opts.Force, Ours: Recognise}).Check(); err != nil {
		return nil, err
	}
	b, err := Build(ctx, src, opts)
	if err != nil {
		return nil, err
	}
	logf("writing %s", dir)
	if err := b.Write(dir); err != nil {
		return nil, err
	}
	return b.Manifest, nil
}

// Built is a bundle in memory.
type Built struct {
	Manifest *Manifest
	// Graphs by manifest key: features (may be absent), train_step, eval.
	Graphs map[GraphKey]*graph.Model

	src *SourceModel
}

// Plan runs the strategies and returns the merged plan and the strategy records.
func Plan(ctx context.Context, src *SourceModel, specs []StrategySpec) (*strategy.Plan, []StrategyRecord, error) {
	skel := strategy.SkeletonOf(src.Model)
	plan := &strategy.Plan{}
	var records []StrategyRecord
	for _, sp := range specs {
		info := sp.Strategy.Info()
		args, err := strategy.ResolveArgs(info, sp.Args)
		if err != nil {
			return nil, nil, err
		}
		prior := *plan
		p, err := sp.Strategy.Plan(ctx, &strategy.Request{Skeleton: skel, Structure: src.Structure, Args: args, Prior: &prior})
		if err != nil {
			return nil, nil, fmt.Errorf("strategy %s: %w", info.Name, err)
		}
		if err := validatePlan(src, skel, p); err != nil {
			return nil, nil, fmt.Errorf("strategy %s returned an invalid plan: %w", info.Name, err)
		}
		plan.Merge(p)
		params := map[string]string{}
		for k, v := range args {
			params[k] = v
		}
		for k, v := range p.Params {
			params[k] = v
		}
		records = append(records, StrategyRecord{Name: info.Name, Version: info.Version, Params: params})
	}
	return plan, records, nil
}

// validatePlan checks a plan against the model: the names it refers to (strategy.CheckPlan, on
// the skeleton of the full graph) and what only the full graph shows: patch operators exist at
// the model's opset, trained and frozen parameters are floating point, host passes are ones the
// host runs.
func validatePlan(src *SourceModel, skel *strategy.Skeleton, p *strategy.Plan) error {
	if p != nil {
		// first, so that an operator ONNX lacks is reported as the input error it is
		if err := checkPatchOps(src, p.Patch); err != nil {
			return err
		}
	}
	if err := strategy.CheckPlan(skel, p); err != nil {
		return err
	}
	g := src.Model.Graph
	for _, name := range append(append([]string(nil), p.Freeze...), p.Train...) {
		if v := g.Value(name); !v.Const.DType.IsFloat() {
			return fmt.Errorf("parameter %q is %s, not floating point", name, v.Const.DType)
		}
	}
	for _, pc := range p.Passes {
		if pc.Name != classsel.PassName {
			return fmt.Errorf("unknown host pass %q (the host runs: %s)", pc.Name, classsel.PassName)
		}
	}
	return nil
}

// findNode returns the node a plan names (by clip.NodeRef, or by its name).
func findNode(g *graph.Graph, ref string) *graph.Node {
	for _, n := range g.Nodes() {
		if clip.NodeRef(n) == ref || (n.Name != "" && n.Name == ref) {
			return n
		}
	}
	return nil
}

// applyPatch adds a plan's nodes and rewires to m.
func applyPatch(m *graph.Model, p *strategy.Patch) error {
	if p == nil {
		return nil
	}
	g := m.Graph
	for _, pn := range p.Nodes {
		var ins []*graph.Value
		for _, in := range pn.Inputs {
			if in == "" {
				ins = append(ins, nil)
				continue
			}
			v := g.Value(in)
			if v == nil {
				return fmt.Errorf("patch node %q reads %q, which does not exist", pn.Name, in)
			}
			ins = append(ins, v)
		}
		var attrs []graph.Attr
		for _, a := range pn.Attrs {
			switch {
			case a.Int != nil:
				attrs = append(attrs, graph.IntAttr(a.Name, *a.Int))
			case a.Float != nil:
				attrs = append(attrs, graph.FloatAttr(a.Name, *a.Float))
			case a.String != nil:
				attrs = append(attrs, graph.StringAttr(a.Name, *a.String))
			case a.Ints != nil:
				attrs = append(attrs, graph.IntsAttr(a.Name, a.Ints...))
			case a.Floats != nil:
				attrs = append(attrs, graph.FloatsAttr(a.Name, a.Floats...))
			default:
				return fmt.Errorf("patch node %q: attribute %q has no value", pn.Name, a.Name)
			}
		}
		n := g.NewNode(pn.OpType, "", pn.Name, ins, pn.Outputs, attrs...)
		for i, o := range n.Outputs() {
			if o != nil && o.Name != pn.Outputs[i] {
				return fmt.Errorf("patch node %q: output %q clashes with an existing value", pn.Name, pn.Outputs[i])
			}
		}
	}
	for _, rw := range p.Rewire {
		n := findNode(g, rw.Node)
		if n == nil || rw.Input < 0 || rw.Input >= n.NumInputs() {
			return fmt.Errorf("patch rewires input %d of node %q, which does not exist", rw.Input, rw.Node)
		}
		n.SetInput(rw.Input, g.Value(rw.Value))
	}
	if err := g.Sort(); err != nil {
		return fmt.Errorf("the patch makes a cycle: %w", err)
	}
	return g.Verify()
}

// stateName is the train-step input holding a tower's cached residual stream.
func stateName(tower string) string { return "state." + tower }

// raiseOpset moves the model to an opset the training graph can use (>= 16).
func raiseOpset(m *graph.Model) error {
	v := m.Opset("")
	if v < grad.MinOpset {
		return errs.Input("the model imports opset %d; skipgraph needs %d or newer (re-export with opset_version >= 14)", v, grad.MinOpset)
	}
	if b := bundleOpset(v); b != v {
		m.SetOpset("", b)
	}
	if m.IRVersion < 8 {
		m.IRVersion = 8
	}
	return nil
}

// bundleOpset is the default-domain opset of the graphs of a bundle made from a source that
// imports opset v: raised to grad.RaisedOpset below 16 (Gather's gradient needs ScatterND
// with reduction), else v.
func bundleOpset(v int64) int64 {
	if v >= grad.MinOpset && v < 16 {
		return grad.RaisedOpset
	}
	return v
}

func ftoa(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }

// Write writes the bundle to dir through a temporary folder beside it.
func (b *Built) Write(dir string) error {
	td, err := safeio.NewTempDir(dir)
	if err != nil {
		return errs.Input("cannot write beside %s: %w", dir, safeio.PathCause(err))
	}
	defer td.Abort()
	tmp := td.Path
	// the graphs are written while the source's sha256 is still being computed in the background
	for _, key := range slices.Sorted(maps.Keys(b.Graphs)) {
		rec := b.Manifest.Graphs[key]
		b.Manifest.Stamp(b.Graphs[key], key)
		if err := onnxio.Save(b.Graphs[key], filepath.Join(tmp, rec.File), onnxio.SaveOptions{}); err != nil {
			return fmt.Errorf("writing %s: %w", rec.File, err)
		}
	}
	if b.src != nil && b.Manifest.Source.Files == nil {
		files, err := b.src.SourceFiles()
		if err != nil {
			return err
		}
		b.Manifest.Source.Files = files
	}
	data, err := json.MarshalIndent(b.Manifest, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, ManifestFile), append(data, '\n'), 0o644); err != nil {
		return err
	}
	return td.Commit()
}

// joinNames renders a list of names for messages.
func joinNames(names []string) string { return strings.Join(names, ", ") }
