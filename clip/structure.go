package clip

import (
	"strings"

	"github.com/skipgraph/skipgraph/graph"
)

// Family is the module layout an export follows, which decides the canonical parameter names.
type Family string

// Families.
const (
	// FamilyHF is HuggingFace transformers' CLIPModel (vision_model.encoder.layers.N...).
	FamilyHF Family = "hf"
	// FamilyOpenAI is the openai/CLIP (and open_clip) module layout
	// (visual.transformer.resblocks.N...).
	FamilyOpenAI Family = "openai"
)

// TowerKind names a tower.
type TowerKind string

// Towers.
const (
	// Vision is the image encoder.
	Vision TowerKind = "vision"
	// Text is the text encoder.
	Text TowerKind = "text"
)

// Layout is the axis order of a tower's residual stream inside the transformer.
type Layout string

// Layouts.
const (
	// BatchFirst is [batch, sequence, width] (HF, open_clip with batch_first).
	BatchFirst Layout = "batch-first"
	// SequenceFirst is [sequence, batch, width] (OpenAI's LND, entered and left by Transposes).
	SequenceFirst Layout = "sequence-first"
)

// Role is what a parameter does in the model.
type Role string

// Parameter roles.
const (
	// RoleEmbedding is a patch, class, token or position embedding.
	RoleEmbedding Role = "embedding"
	// RolePreNorm is the vision pre-LayerNorm.
	RolePreNorm Role = "pre_norm"
	// RoleLayer is a parameter of a transformer layer.
	RoleLayer Role = "layer"
	// RolePostNorm is the vision post-LayerNorm or the text final LayerNorm.
	RolePostNorm Role = "post_norm"
	// RoleProjection is a projection into the joint embedding space.
	RoleProjection Role = "projection"
	// RoleLogitScale is the logit scale.
	RoleLogitScale Role = "logit_scale"
)

// DefaultLogitScale is the logit scale (after exp) assumed when the model has no head, as in
// split exports: CLIP's trained value, exp(4.6052) = 100.
const DefaultLogitScale = 100.0

// Structure is the CLIP structure found in an export. Values and nodes are referred to by name;
// a node without a name is referred to as "@" followed by the name of its first output (see
// NodeRef). The JSON form is stable.
type Structure struct {
	// Family decides the canonical parameter names.
	Family Family `json:"family"`
	// Split is true when the towers come from two model files (DiscoverSplit).
	Split bool `json:"split"`
	// Opset is the default-domain opset of the (first) model.
	Opset int64 `json:"opset"`
	// Vision is the image tower; nil in a text-only model.
	Vision *Tower `json:"vision,omitempty"`
	// Text is the text tower; nil in an image-only model.
	Text *Tower `json:"text,omitempty"`
	// Head is the similarity head; Head.Present is false when the model has none.
	Head Head `json:"head"`
	// ClassAxes are the axes that index classes (text prompts).
	ClassAxes ClassAxes `json:"class_axes"`
	// Params lists every parameter found, in graph order per tower.
	Params []*Param `json:"parameters"`
	// Unmapped lists floating-point initializers with more than one element that are not
	// parameters found here nor known buffers (e.g. masks); normally empty.
	Unmapped []string `json:"unmapped,omitempty"`
}

// Tower is one encoder: embeddings, an optional pre-norm, the transformer layers, the post-norm,
// pooling and projection.
type Tower struct {
	// Kind is Vision or Text.
	Kind TowerKind `json:"kind"`
	// Model is the model file holding the tower in a split export ("vision" or "text" for the
	// arguments of DiscoverSplit); empty for a combined export.
	Model string `json:"model,omitempty"`
	// Layout is the residual stream's axis order inside the transformer.
	Layout Layout `json:"layout"`
	// BatchAxis is the axis of the residual stream that indexes the batch (images, or classes
	// for the text tower): 0 batch-first, 1 sequence-first.
	BatchAxis int `json:"batch_axis"`
	// Width, Heads, HeadDim and MLPWidth size the transformer.
	Width    int `json:"width"`
	Heads    int `json:"heads"`
	HeadDim  int `json:"head_dim"`
	MLPWidth int `json:"mlp_width"`
	// SeqLen is the sequence length when static (vision: patches plus class token; text: the
	// static token dimension), else 0.
	SeqLen int `json:"seq_len,omitempty"`
	// Positions is the number of position embeddings (the text context length).
	Positions int `json:"positions,omitempty"`
	// Inputs are the graph inputs the tower depends on (pixel_values; input_ids and
	// attention_mask).
	Inputs []string `json:"inputs"`
	// Embedding is the embedding part, up to the residual stream.
	Embedding Embedding `json:"embedding"`
	// PreNorm is the LayerNorm before the first layer (vision pre_layrnorm / ln_pre), or nil.
	PreNorm *Norm `json:"pre_norm,omitempty"`
	// LayoutNodes are the Transposes that enter and leave the sequence-first layout.
	LayoutNodes []string `json:"layout_nodes,omitempty"`
	// Layers are the transformer layers, in order.
	Layers []*Layer `json:"layers"`
	// PostNorm is the final LayerNorm (post_layernorm / ln_post, final_layer_norm / ln_final).
	PostNorm *Norm `json:"post_norm,omitempty"`
	// Pooling picks one token per sequence.
	Pooling Pooling `json:"pooling"`
	// Projection maps the pooled feature into the joint space, or nil.
	Projection *Linear `json:"projection,omitempty"`
	// Output is the tower's embedding (projection output, or pooled feature without projection).
	Output string `json:"output"`
	// Masks are the attention-mask subgraphs the layers consume (text tower).
	Masks []Mask `json:"masks,omitempty"`

	g          *graph.Graph
	an         *analyzer
	layerNodes map[*graph.Node]int
}

// Graph returns the graph holding the tower.
func (t *Tower) Graph() *graph.Graph { return t.g }

// NumLayers returns the number of transformer layers.
func (t *Tower) NumLayers() int { return len(t.Layers) }

// Boundary returns the residual-stream value entering layer i; Boundary(NumLayers()) is the value
// leaving the last layer. It returns nil when i is out of range.
func (t *Tower) Boundary(i int) *graph.Value {
	switch {
	case i >= 0 && i < len(t.Layers):
		return t.Layers[i].in
	case i == len(t.Layers) && i > 0:
		return t.Layers[i-1].out
	}
	return nil
}

// LayerOf returns the index of the layer a node belongs to, or -1.
func (t *Tower) LayerOf(n *graph.Node) int {
	if i, ok := t.layerNodes[n]; ok {
		return i
	}
	return -1
}

// Embedding is the part of a tower before the residual stream.
type Embedding struct {
	// Output is the value leaving the embeddings (entering the pre-norm, or layer 0).
	Output string `json:"output"`
	// Patch is the Conv node of the patch embedding (vision).
	Patch string `json:"patch,omitempty"`
	// PatchWeight, ClassEmbedding, PositionEmbedding and TokenEmbedding are initializer names.
	PatchWeight       string `json:"patch_weight,omitempty"`
	ClassEmbedding    string `json:"class_embedding,omitempty"`
	PositionEmbedding string `json:"position_embedding,omitempty"`
	TokenEmbedding    string `json:"token_embedding,omitempty"`
	// TokenGather is the Gather node looking the token ids up (text).
	TokenGather string `json:"token_gather,omitempty"`
	// Nodes are all the nodes computing Output.
	Nodes []string `json:"nodes"`
}

// Norm is one LayerNorm, decomposed (before opset 17) or a LayerNormalization node.
type Norm struct {
	// Decomposed is true for the ReduceMean/Sub/Pow/.../Add form.
	Decomposed bool `json:"decomposed"`
	// Input and Output are the values normalised and produced (outside any Casts around it).
	Input  string `json:"input"`
	Output string `json:"output"`
	// Weight and Bias are initializer names ("" when absent).
	Weight string `json:"weight"`
	Bias   string `json:"bias"`
	// Epsilon is the variance epsilon.
	Epsilon float64 `json:"epsilon"`
	// Nodes are the pattern's nodes, Casts included.
	Nodes []string `json:"nodes"`

	in, out *graph.Value
	nodes   []*graph.Node
}

// Linear is one projection: MatMul (+ Add bias) or Gemm.
type Linear struct {
	// Op is "MatMul" or "Gemm".
	Op string `json:"op"`
	// Node is the MatMul or Gemm node; BiasNode the Add of the bias after a MatMul.
	Node     string `json:"node"`
	BiasNode string `json:"bias_node,omitempty"`
	// Weight and Bias are initializer names.
	Weight string `json:"weight"`
	Bias   string `json:"bias,omitempty"`
	// WeightTransposed is true when the initializer is laid out [in, out], the transpose of
	// nn.Linear's [out, in] (a MatMul on the initializer itself; false for Gemm with transB=1 or
	// a MatMul through a Transpose node). Param.Transposed gives the layout relative to the torch
	// parameter, which differs for OpenAI's proj and text_projection (used as x @ W).
	WeightTransposed bool `json:"weight_transposed"`
	// In and Out are the input and output values.
	In  string `json:"input"`
	Out string `json:"output"`
	// InFeatures and OutFeatures size the projection.
	InFeatures  int `json:"in_features"`
	OutFeatures int `json:"out_features"`

	node, biasNode *graph.Node
	weight, bias   *graph.Value
	wTransposeNode *graph.Node
	in, out        *graph.Value
}

// Attention is a self-attention block.
type Attention struct {
	// Q, K, V are the input projections; with a packed in-projection all three are the same.
	Q Linear `json:"q"`
	K Linear `json:"k"`
	V Linear `json:"v"`
	// Packed is true when one projection computes q, k and v together.
	Packed bool `json:"packed"`
	// Out is the output projection.
	Out Linear `json:"out"`
	// Softmax is the Softmax node.
	Softmax string `json:"softmax"`
	// MaskInputs are the values from outside the layer added to the attention scores.
	MaskInputs []string `json:"mask_inputs,omitempty"`
	// Nodes are the nodes of the block (LayerNorm and residual Add excluded).
	Nodes []string `json:"nodes"`
}

// MLP is the feed-forward block.
type MLP struct {
	// FC1 and FC2 are fc1/fc2 (HF) or c_fc/c_proj (OpenAI).
	FC1 Linear `json:"fc1"`
	FC2 Linear `json:"fc2"`
	// Activation is "quick_gelu", "gelu" (erf), "gelu_tanh", "relu" or "unknown".
	Activation string `json:"activation"`
	// Nodes are the nodes of the block (LayerNorm and residual Add excluded).
	Nodes []string `json:"nodes"`
}

// Layer is one pre-norm transformer layer: x + attn(ln1(x)), then h + mlp(ln2(h)).
type Layer struct {
	// Index is the layer's position in its tower.
	Index int `json:"index"`
	// In is the residual-stream value entering the layer, Mid the one between the two
	// sub-blocks, Out the one leaving it.
	In  string `json:"in"`
	Mid string `json:"mid"`
	Out string `json:"out"`
	// LN1 and LN2 are layer_norm1/ln_1 and layer_norm2/ln_2.
	LN1 Norm `json:"ln1"`
	LN2 Norm `json:"ln2"`
	// Attention and MLP are the two sub-blocks.
	Attention Attention `json:"attention"`
	MLP       MLP       `json:"mlp"`
	// Residual are the two residual Add nodes.
	Residual [2]string `json:"residual"`
	// Nodes are all nodes of the layer (those depending on In and computing Out, plus
	// constants used only by them).
	Nodes []string `json:"nodes"`

	in, mid, out *graph.Value
	nodes        []*graph.Node
	attnBlock    *block
	mlpBlock     *block
	maskValues   []*graph.Value
	attnScale    float64
	headDims     []int64
}

// InValue returns the residual-stream value entering the layer.
func (l *Layer) InValue() *graph.Value { return l.in }

// OutValue returns the residual-stream value leaving the layer.
func (l *Layer) OutValue() *graph.Value { return l.out }

// NodeList returns the layer's nodes, in graph order.
func (l *Layer) NodeList() []*graph.Node { return append([]*graph.Node(nil), l.nodes...) }

// Pooling picks one token per sequence: the class token (vision) or the end-of-text token (text).
type Pooling struct {
	// Kind is "class_token" or "eot_argmax".
	Kind string `json:"kind"`
	// Form for eot_argmax: "argmax" (input_ids.argmax, OpenAI) or "eos_equal"
	// ((ids == eos).argmax, HF).
	Form string `json:"form,omitempty"`
	// EOSToken is the end-of-text token id compared in the eos_equal form.
	EOSToken int64 `json:"eos_token,omitempty"`
	// ArgMax is the ArgMax node and Index its output (the end-of-text positions).
	ArgMax string `json:"argmax,omitempty"`
	Index  string `json:"index,omitempty"`
	// Gather is the node selecting the token from the stream.
	Gather string `json:"gather,omitempty"`
	// Nodes are the pooling nodes on the feature path.
	Nodes []string `json:"nodes"`
}

// Mask is an attention-mask subgraph consumed by the layers.
type Mask struct {
	// Kind is "causal" (no dependence on attention_mask) or "padding".
	Kind string `json:"kind"`
	// Value is the mask value added to the attention scores.
	Value string `json:"value"`
	// Constant is true when it depends on no graph input (an initializer or folded constant).
	Constant bool `json:"constant"`
	// Inputs are the graph inputs it depends on.
	Inputs []string `json:"inputs,omitempty"`
	// Nodes compute Value.
	Nodes []string `json:"nodes,omitempty"`
}

// Head is the similarity head: normalisation, logit scale and logits.
type Head struct {
	// Present is false when the model has no head (split exports, one-tower models).
	Present bool `json:"present"`
	// LogitScale is the scale applied to the cosine similarities.
	LogitScale LogitScale `json:"logit_scale"`
	// ImageEmbeds and TextEmbeds are the normalised embeddings.
	ImageEmbeds string `json:"image_embeds,omitempty"`
	TextEmbeds  string `json:"text_embeds,omitempty"`
	// ImageNorm and TextNorm are the normalisation nodes.
	ImageNorm []string `json:"image_norm,omitempty"`
	TextNorm  []string `json:"text_norm,omitempty"`
	// LogitsPerImage and LogitsPerText are the logits values (graph outputs when present).
	LogitsPerImage string `json:"logits_per_image,omitempty"`
	LogitsPerText  string `json:"logits_per_text,omitempty"`
	// Nodes are the head's nodes after the normalisation.
	Nodes []string `json:"nodes,omitempty"`
}

// LogitScale is the logit scale: an initializer passed through Exp, a folded constant, or the
// default.
type LogitScale struct {
	// Initializer holds the scale ("" when folded into a Constant node, or absent).
	Initializer string `json:"initializer,omitempty"`
	// Exp is true when the graph applies Exp to the initializer (CLIP's parameterisation).
	Exp bool `json:"exp"`
	// Folded is true when the scale is a constant rather than a parameter.
	Folded bool `json:"folded"`
	// Default is true when the model has no head and DefaultLogitScale is assumed.
	Default bool `json:"default"`
	// Raw is the stored value (before Exp); Value the multiplier.
	Raw   float64 `json:"raw"`
	Value float64 `json:"value"`
	// Node is the Mul applying it.
	Node string `json:"node,omitempty"`
}

// ClassAxes are the axes that index classes (one text prompt per class).
type ClassAxes struct {
	// InputIDs is the class axis of input_ids and attention_mask (0).
	InputIDs int `json:"input_ids"`
	// TextStream is the class axis of the text residual stream: 0 batch-first [C,S,D], 1
	// sequence-first [S,C,D].
	TextStream int `json:"text_stream"`
	// TextEmbeds is the class axis of the text embeddings (0).
	TextEmbeds int `json:"text_embeds"`
	// LogitsPerImage is the class axis of logits_per_image [B,C] (1).
	LogitsPerImage int `json:"logits_per_image"`
	// LogitsPerText is the class axis of logits_per_text [C,B] (0).
	LogitsPerText int `json:"logits_per_text"`
}

// Param is one parameter (or slice of one) held by an initializer.
type Param struct {
	// Canonical is the torch parameter name, with [q], [k] or [v] appended for a slice of a
	// packed in-projection.
	Canonical string `json:"canonical"`
	// Initializer is the ONNX initializer's name.
	Initializer string `json:"initializer"`
	// Transposed is true when the initializer holds the torch parameter (slice) transposed.
	Transposed bool `json:"transposed"`
	// Rows, when set, is the row slice [from, to) of the torch parameter held (before any
	// transposition).
	Rows []int64 `json:"rows,omitempty"`
	// Shape is the initializer's shape.
	Shape []int64 `json:"shape"`
	// Tower is "vision", "text" or "" (logit scale).
	Tower TowerKind `json:"tower,omitempty"`
	// Layer is the transformer layer, or -1.
	Layer int `json:"layer"`
	// Role is what the parameter does.
	Role Role `json:"role"`

	value *graph.Value
}

// TorchName returns the torch parameter name (Canonical without a slice suffix).
func (p *Param) TorchName() string {
	if i := strings.IndexByte(p.Canonical, '['); i >= 0 {
		return p.Canonical[:i]
	}
	return p.Canonical
}

// Value returns the initializer value.
func (p *Param) Value() *graph.Value { return p.value }

// Tower returns the tower of the given kind, or nil.
func (s *Structure) Tower(k TowerKind) *Tower {
	switch k {
	case Vision:
		return s.Vision
	case Text:
		return s.Text
	}
	return nil
}

// Towers returns the towers present, vision first.
func (s *Structure) Towers() []*Tower {
	var out []*Tower
	if s.Vision != nil {
		out = append(out, s.Vision)
	}
	if s.Text != nil {
		out = append(out, s.Text)
	}
	return out
}

// Param returns the parameter with the given canonical name, or nil.
func (s *Structure) Param(canonical string) *Param {
	for _, p := range s.Params {
		if p.Canonical == canonical {
			return p
		}
	}
	return nil
}

// ParamsOf returns the parameters held by an initializer (normally one).
func (s *Structure) ParamsOf(initializer string) []*Param {
	var out []*Param
	for _, p := range s.Params {
		if p.Initializer == initializer {
			out = append(out, p)
		}
	}
	return out
}

// NodeRef names a node for the structure's lists: its name, or "@" and its first output's name
// when it has none.
func NodeRef(n *graph.Node) string {
	if n.Name != "" {
		return n.Name
	}
	if o := n.Output(0); o != nil {
		return "@" + o.Name
	}
	return "@" + n.OpType
}

func nodeRefs(ns []*graph.Node) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = NodeRef(n)
	}
	return out
}
