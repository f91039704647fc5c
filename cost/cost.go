package cost

import (
	"context"
	"fmt"
	"strconv"

	"github.com/skipgraph/skipgraph/bundle"
	"github.com/skipgraph/skipgraph/clip"
	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/rewrite"
	"github.com/skipgraph/skipgraph/rewrite/classsel"
	"github.com/skipgraph/skipgraph/strategy"
)

// MasterBytes is the size of one trainable parameter (float32 masters) and of one optimizer
// state element.
const MasterBytes = 4

// Settings size one training step.
type Settings struct {
	// Batch is B, the images per step.
	Batch int `json:"batch"`
	// Classes is C, the class prompts of the task.
	Classes int `json:"classes"`
	// Optimizer decides the state per trainable parameter; the zero value means
	// rewrite.DefaultSGD.
	Optimizer rewrite.OptimizerConfig `json:"optimizer"`
}

// Cost is a summable cost.
type Cost struct {
	// Params counts all parameters; TrainableParams those that train.
	Params          int64 `json:"params"`
	TrainableParams int64 `json:"trainable_params"`
	// TrainableBytes holds the trainable parameters as float32 masters.
	TrainableBytes int64 `json:"trainable_bytes"`
	// OptimizerBytes is the optimizer state of the trainable parameters.
	OptimizerBytes int64 `json:"optimizer_bytes"`
	// ForwardFLOPs and BackwardFLOPs are one step's matmul FLOPs.
	ForwardFLOPs  float64 `json:"forward_flops"`
	BackwardFLOPs float64 `json:"backward_flops"`
	// ActivationBytes is what the backward pass keeps from the forward pass.
	ActivationBytes float64 `json:"activation_bytes"`
}

// StepFLOPs returns forward plus backward FLOPs.
func (c Cost) StepFLOPs() float64 { return c.ForwardFLOPs + c.BackwardFLOPs }

// Add adds o to c.
func (c *Cost) Add(o Cost) {
	c.Params += o.Params
	c.TrainableParams += o.TrainableParams
	c.TrainableBytes += o.TrainableBytes
	c.OptimizerBytes += o.OptimizerBytes
	c.ForwardFLOPs += o.ForwardFLOPs
	c.BackwardFLOPs += o.BackwardFLOPs
	c.ActivationBytes += o.ActivationBytes
}

// Part is the cost of one piece of a tower: "embedding", "layer.N", "post_norm" or
// "projection".
type Part struct {
	// Name says which piece.
	Name string `json:"name"`
	// Runs is false when the piece is in the cached prefix (it does not run per step).
	Runs bool `json:"runs"`
	// Grad is true when its output needs a gradient (it depends on a trainable parameter).
	Grad bool `json:"grad"`
	Cost
}

// Tower is one tower's cost.
type Tower struct {
	// Kind is vision or text.
	Kind clip.TowerKind `json:"kind"`
	// Layers is the tower's layer count.
	Layers int `json:"layers"`
	// Start is the first layer run per step (the cached boundary; 0 when nothing is cached).
	Start int `json:"start"`
	// Cached is true when the prefix before Start is cached.
	Cached bool `json:"cached"`
	// GradStop is the layer where the gradient stops (0 when it reaches the embeddings).
	GradStop int `json:"grad_stop"`
	// Rows is R, the sequences per step: B images, C classes, or K plus the expected tail with
	// CSkip.
	Rows float64 `json:"rows"`
	// SeqLen is S, the tokens per sequence.
	SeqLen int `json:"seq_len"`
	// PrefixFLOPsPerItem is the cached prefix's forward FLOPs for one image or one class (0
	// without a cache).
	PrefixFLOPsPerItem float64 `json:"prefix_flops_per_item"`
	// Parts are the embedding, the layers, the post-norm and the projection, in order.
	Parts []Part `json:"parts"`
	Cost
}

// Part returns the named part, or nil.
func (t *Tower) Part(name string) *Part {
	for i := range t.Parts {
		if t.Parts[i].Name == name {
			return &t.Parts[i]
		}
	}
	return nil
}

// CSkip is CSkip's effect on the text tower.
type CSkip struct {
	// Config is CSkip's configuration.
	Config classsel.Config `json:"config"`
	// K is the number of top classes kept.
	K int `json:"k"`
	// ExpectedTail is the expected number of tail classes kept (sum of the keep probabilities).
	ExpectedTail float64 `json:"expected_tail"`
}

// Estimate is the cost of one training step.
type Estimate struct {
	// Settings are the step's sizes (optimizer defaults filled in).
	Settings Settings `json:"settings"`
	// StateSlots is the optimizer state per trainable parameter, in parameter copies.
	StateSlots int `json:"state_slots"`
	// CSkip is set when the plan runs CSkip's class gather.
	CSkip *CSkip `json:"cskip,omitempty"`
	// Towers are the towers present, vision first.
	Towers []*Tower `json:"towers"`
	// Head is the logit scale, the logits and CSkip's scores.
	Head Cost `json:"head"`
	// Total sums the towers and the head.
	Total Cost `json:"total"`
	// TextPrefixFLOPs is the cached text prefix's forward for all C class prompts, run once.
	TextPrefixFLOPs float64 `json:"text_prefix_flops"`
	// ImagePrefixFLOPs is the cached image prefix's forward for one image, run once per image
	// per epoch under augmentation (once in all without it).
	ImagePrefixFLOPs float64 `json:"image_prefix_flops"`
}

// Tower returns the tower of the given kind, or nil.
func (e *Estimate) Tower(k clip.TowerKind) *Tower {
	for _, t := range e.Towers {
		if t.Kind == k {
			return t
		}
	}
	return nil
}

// ForSpecs plans the strategies on the source model (bundle.Plan) and estimates the step.
func ForSpecs(ctx context.Context, src *bundle.SourceModel, specs []bundle.StrategySpec, s Settings) (*Estimate, error) {
	plan, _, err := bundle.Plan(ctx, src, specs)
	if err != nil {
		return nil, err
	}
	return Compute(src.Structure, plan, s)
}

// Compute estimates one training step of the model with the given structure under a merged
// plan. The trainable set follows the host's rule: every parameter but the logit scale trains
// unless the plan freezes it; Train entries win over Freeze entries not repeated in Freeze.
func Compute(st *clip.Structure, plan *strategy.Plan, s Settings) (*Estimate, error) {
	if s.Batch < 1 {
		return nil, errs.Input("the batch size must be at least 1 (got %d)", s.Batch)
	}
	if s.Classes < 1 {
		return nil, errs.Input("the class count must be at least 1 (got %d)", s.Classes)
	}
	if s.Optimizer.Kind == "" {
		s.Optimizer = rewrite.DefaultSGD
	}
	if err := s.Optimizer.Validate(); err != nil {
		return nil, errs.AsInput(err)
	}
	if plan == nil {
		plan = &strategy.Plan{}
	}
	e := &Estimate{Settings: s, StateSlots: len(s.Optimizer.OptimizerState())}
	trainable := plan.Trainable(st)

	textRows := float64(s.Classes)
	for _, pc := range plan.Passes {
		if pc.Name != classsel.PassName {
			continue
		}
		cfg, err := classsel.ParseConfig(pc.Args)
		if err != nil {
			return nil, err
		}
		cs := &CSkip{Config: cfg, K: cfg.TopK(s.Classes)}
		cs.ExpectedTail = cfg.ExpectedTail(s.Classes)
		e.CSkip = cs
		textRows = float64(cs.K) + cs.ExpectedTail
	}

	c := &counter{st: st, trainable: trainable, slots: e.StateSlots}
	gradOut := map[clip.TowerKind]bool{}
	embed := map[clip.TowerKind]int{}
	for _, t := range st.Towers() {
		rows := float64(s.Batch)
		if t.Kind == clip.Text {
			rows = textRows
		}
		tc, err := c.tower(t, plan, rows)
		if err != nil {
			return nil, err
		}
		e.Towers = append(e.Towers, tc)
		gradOut[t.Kind] = tc.Parts[len(tc.Parts)-1].Grad
		embed[t.Kind] = c.embedWidth(t)
		e.Total.Add(tc.Cost)
		switch t.Kind {
		case clip.Text:
			e.TextPrefixFLOPs = tc.PrefixFLOPsPerItem * float64(s.Classes)
		case clip.Vision:
			e.ImagePrefixFLOPs = tc.PrefixFLOPsPerItem
		}
	}

	// Head: logit scale, logits, CSkip scores.
	for _, p := range c.params(func(p *clip.Param) bool { return p.Tower == "" }) {
		c.addParam(&e.Head, p)
	}
	if st.Vision != nil && st.Text != nil {
		b, rt := float64(s.Batch), textRows
		ew := float64(embed[clip.Vision])
		fwd := 2 * b * rt * ew
		e.Head.ForwardFLOPs += fwd
		gv, gt := gradOut[clip.Vision], gradOut[clip.Text]
		var act float64
		if gv {
			e.Head.BackwardFLOPs += fwd
			act += b*ew + rt*ew
		}
		if gt {
			e.Head.BackwardFLOPs += fwd
			act += rt*ew + b*ew
		}
		if gv || gt {
			act += b * rt
		}
		e.Head.ActivationBytes += act * float64(c.elemSize(st.Vision))
		if e.CSkip != nil {
			e.Head.ForwardFLOPs += 2 * b * float64(s.Classes) * ew
		}
	}
	e.Total.Add(e.Head)
	return e, nil
}

// counter holds what the per-tower walk needs.
type counter struct {
	st        *clip.Structure
	trainable map[string]bool
	slots     int
}

// params returns the parameters selected, one per initializer.
func (c *counter) params(keep func(*clip.Param) bool) []*clip.Param {
	seen := map[string]bool{}
	var out []*clip.Param
	for _, p := range c.st.Params {
		if seen[p.Initializer] || !keep(p) {
			continue
		}
		seen[p.Initializer] = true
		out = append(out, p)
	}
	return out
}

func elements(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	return n
}

// addParam counts one parameter into a cost.
func (c *counter) addParam(dst *Cost, p *clip.Param) {
	n := elements(p.Shape)
	dst.Params += n
	if c.trainable[p.Initializer] {
		dst.TrainableParams += n
		dst.TrainableBytes += n * MasterBytes
		dst.OptimizerBytes += n * MasterBytes * int64(c.slots)
	}
}

// elemSize is the element size of a tower's activations: that of its first layer weight, else 4.
func (c *counter) elemSize(t *clip.Tower) int {
	if t != nil {
		for _, p := range c.st.Params {
			if p.Tower == t.Kind && p.Role == clip.RoleLayer && p.Value() != nil {
				if n := p.Value().Type.Elem.Size(); n > 0 {
					return n
				}
			}
		}
	}
	return 4
}

// embedWidth is E: the projection's output width, or the tower width without a projection.
func (c *counter) embedWidth(t *clip.Tower) int {
	if t.Projection != nil {
		return t.Projection.OutFeatures
	}
	return t.Width
}

// seqLen is S: the static sequence length, else the number of positions.
func seqLen(t *clip.Tower) int {
	if t.SeqLen > 0 {
		return t.SeqLen
	}
	return t.Positions
}

func (c *counter) tr(names ...string) bool {
	for _, n := range names {
		if n != "" && c.trainable[n] {
			return true
		}
	}
	return false
}

// tower walks one tower in forward order, carrying the gradient flag.
func (c *counter) tower(t *clip.Tower, plan *strategy.Plan, rows float64) (*Tower, error) {
	L := t.NumLayers()
	tc := &Tower{Kind: t.Kind, Layers: L, Rows: rows, SeqLen: seqLen(t)}
	if tc.SeqLen <= 0 {
		return nil, errs.Input("the %s tower has no known sequence length; cannot estimate its cost", t.Kind)
	}
	for _, bd := range plan.StopGradients {
		if bd.Tower != string(t.Kind) {
			continue
		}
		if bd.Layer < 0 || bd.Layer > L {
			return nil, errs.Input("stop-gradient boundary at layer %d of the %s tower, which has %d layers", bd.Layer, t.Kind, L)
		}
		if bd.Cache && (!tc.Cached || bd.Layer > tc.Start) {
			tc.Cached, tc.Start = true, bd.Layer
		}
		tc.GradStop = max(tc.GradStop, bd.Layer)
	}
	elem := float64(c.elemSize(t))
	S := float64(tc.SeqLen)
	N := rows * S

	// Embedding (and pre-norm).
	emb := Part{Name: "embedding", Runs: !tc.Cached}
	for _, p := range c.params(func(p *clip.Param) bool {
		return p.Tower == t.Kind && (p.Role == clip.RoleEmbedding || p.Role == clip.RolePreNorm)
	}) {
		c.addParam(&emb.Cost, p)
		if emb.Runs && c.trainable[p.Initializer] {
			emb.Grad = true
		}
	}
	var embPerItem float64
	if t.Embedding.PatchWeight != "" {
		var shape []int64
		for _, p := range c.st.ParamsOf(t.Embedding.PatchWeight) {
			shape = p.Shape
		}
		if len(shape) < 2 {
			return nil, fmt.Errorf("the patch weight %q has shape %v", t.Embedding.PatchWeight, shape)
		}
		k := float64(elements(shape[1:]))
		patches := S
		if t.Embedding.ClassEmbedding != "" {
			patches--
		}
		embPerItem = 2 * patches * k * float64(shape[0])
		if emb.Runs {
			emb.ForwardFLOPs = embPerItem * rows
			if c.tr(t.Embedding.PatchWeight) {
				emb.BackwardFLOPs += emb.ForwardFLOPs
				emb.ActivationBytes += rows * patches * k * elem
			}
		}
	}
	if emb.Runs && t.PreNorm != nil && (emb.Grad || c.tr(t.PreNorm.Weight, t.PreNorm.Bias)) {
		emb.ActivationBytes += (N*float64(t.Width) + 2*N) * elem
	}
	tc.Parts = append(tc.Parts, emb)
	g := emb.Grad && tc.GradStop == 0
	if tc.Cached {
		tc.PrefixFLOPsPerItem = embPerItem
	}

	for i, l := range t.Layers {
		lp := Part{Name: "layer." + strconv.Itoa(i), Runs: i >= tc.Start}
		for _, p := range c.params(func(p *clip.Param) bool {
			return p.Tower == t.Kind && p.Role == clip.RoleLayer && p.Layer == i
		}) {
			c.addParam(&lp.Cost, p)
		}
		if i == tc.GradStop {
			g = false
		}
		if !lp.Runs {
			tc.PrefixFLOPsPerItem += c.layer(t, l, 1, false).ForwardFLOPs
			tc.Parts = append(tc.Parts, lp)
			continue
		}
		lc := c.layer(t, l, rows, g)
		lc.Params, lc.TrainableParams, lc.TrainableBytes, lc.OptimizerBytes = lp.Params, lp.TrainableParams, lp.TrainableBytes, lp.OptimizerBytes
		lp.Cost = lc.Cost
		lp.Grad = lc.Grad
		g = lc.Grad
		tc.Parts = append(tc.Parts, lp)
	}

	// Post-norm.
	post := Part{Name: "post_norm", Runs: true}
	if t.PostNorm != nil {
		for _, p := range c.params(func(p *clip.Param) bool { return p.Tower == t.Kind && p.Role == clip.RolePostNorm }) {
			c.addParam(&post.Cost, p)
		}
		if g || c.tr(t.PostNorm.Weight, t.PostNorm.Bias) {
			g = true
			normRows := N
			if pooledFirst(t) {
				normRows = rows
			}
			post.ActivationBytes = (normRows*float64(t.Width) + 2*normRows) * elem
		}
	}
	post.Grad = g
	tc.Parts = append(tc.Parts, post)

	// Projection.
	proj := Part{Name: "projection", Runs: true}
	for _, p := range c.params(func(p *clip.Param) bool { return p.Tower == t.Kind && p.Role == clip.RoleProjection }) {
		c.addParam(&proj.Cost, p)
	}
	if pr := t.Projection; pr != nil {
		f := 2 * rows * float64(pr.InFeatures) * float64(pr.OutFeatures)
		proj.ForwardFLOPs = f
		if g {
			proj.BackwardFLOPs += f
		}
		if c.tr(pr.Weight) {
			proj.BackwardFLOPs += f
			proj.ActivationBytes += rows * float64(pr.InFeatures) * elem
		}
		g = g || c.tr(pr.Weight, pr.Bias)
	}
	proj.Grad = g
	tc.Parts = append(tc.Parts, proj)

	for _, p := range tc.Parts {
		tc.Add(p.Cost)
	}
	return tc, nil
}

// pooledFirst reports whether the post-norm reads the pooled token (the vision tower's
// class token) rather than the whole stream (the text tower, pooled after its final norm).
func pooledFirst(t *clip.Tower) bool {
	g := t.Graph()
	if t.PostNorm == nil || g == nil {
		return t.Kind == clip.Vision
	}
	v := g.Value(t.PostNorm.Input)
	if v == nil {
		return t.Kind == clip.Vision
	}
	p, _ := v.Producer()
	if p == nil {
		return false
	}
	ref := clip.NodeRef(p)
	if ref == t.Pooling.Gather {
		return true
	}
	for _, n := range t.Pooling.Nodes {
		if n == ref {
			return true
		}
	}
	return false
}

// layerCost is one layer's cost and the gradient flag leaving it.
type layerCost struct {
	Cost
	Grad bool
}

// linearFLOPs is the forward FLOPs of a projection over n rows.
func linearFLOPs(n float64, l *clip.Linear) float64 {
	return 2 * n * float64(l.InFeatures) * float64(l.OutFeatures)
}

// layer costs one transformer layer over rows sequences; g says whether its input needs a
// gradient. See the package documentation for the formulas.
func (c *counter) layer(t *clip.Tower, l *clip.Layer, rows float64, g bool) layerCost {
	var lc layerCost
	elem := float64(c.elemSize(t))
	S := float64(seqLen(t))
	N := rows * S
	D, M := float64(t.Width), float64(t.MLPWidth)
	A := float64(t.Heads * t.HeadDim)
	H := float64(t.Heads)
	var act float64

	// linear adds a projection's forward and backward; in is whether its input needs a gradient.
	linear := func(lin *clip.Linear, in bool) {
		f := linearFLOPs(N, lin)
		lc.ForwardFLOPs += f
		if in {
			lc.BackwardFLOPs += f
		}
		if c.tr(lin.Weight) {
			lc.BackwardFLOPs += f
		}
	}

	// LayerNorm 1.
	g1 := g || c.tr(l.LN1.Weight, l.LN1.Bias)
	if g1 {
		act += N*D + 2*N
	}
	// q, k, v (a packed in-projection whose features span all three counts once).
	at := &l.Attention
	qkv := []*clip.Linear{&at.Q, &at.K, &at.V}
	if at.Packed && at.Q.Node == at.K.Node && at.Q.OutFeatures > t.Heads*t.HeadDim {
		qkv = qkv[:1]
	}
	qkvTrains := false
	for _, lin := range qkv {
		linear(lin, g1)
		qkvTrains = qkvTrains || c.tr(lin.Weight)
	}
	if qkvTrains {
		act += N * D
	}
	g2 := g1
	for _, lin := range []*clip.Linear{&at.Q, &at.K, &at.V} {
		g2 = g2 || c.tr(lin.Weight, lin.Bias)
	}
	// Scores and context.
	f := 2 * rows * S * S * A
	lc.ForwardFLOPs += 2 * f
	if g2 {
		lc.BackwardFLOPs += 4 * f
		act += 3*N*A + rows*H*S*S
	}
	// Out projection.
	linear(&at.Out, g2)
	if c.tr(at.Out.Weight) {
		act += N * A
	}
	g3 := g2 || c.tr(at.Out.Weight, at.Out.Bias)
	// LayerNorm 2.
	g4 := g3 || c.tr(l.LN2.Weight, l.LN2.Bias)
	if g4 {
		act += N*D + 2*N
	}
	// MLP.
	linear(&l.MLP.FC1, g4)
	if c.tr(l.MLP.FC1.Weight) {
		act += N * D
	}
	g5 := g4 || c.tr(l.MLP.FC1.Weight, l.MLP.FC1.Bias)
	if g5 {
		act += N * M
	}
	linear(&l.MLP.FC2, g5)
	if c.tr(l.MLP.FC2.Weight) {
		act += N * M
	}
	lc.Grad = g5 || c.tr(l.MLP.FC2.Weight, l.MLP.FC2.Bias)
	lc.ActivationBytes = act * elem
	return lc
}
