package bundle

import (
	"strings"

	"github.com/skipgraph/skipgraph/graph"
	"github.com/skipgraph/skipgraph/rewrite/grad"
)

// GraphKey names a graph of the bundle in the manifest (Manifest.Graphs) and in Pipelines.
type GraphKey string

// The bundle's graphs.
const (
	// GraphFeatures is features.onnx, the frozen prefix (absent when nothing is cached).
	GraphFeatures GraphKey = "features"
	// GraphEval is eval.onnx, the full model with the trainable parameters as inputs.
	GraphEval GraphKey = "eval"
	// GraphTrainStep is train_step.onnx, one optimizer step.
	GraphTrainStep GraphKey = "train_step"
)

// Role says what a graph input or output of the bundle is for (IORecord.Role). Each is recorded
// by the pass that creates the input or output; inputs and outputs of the source model keep
// the roles of the source (image, text_input, param, input; logits, output).
type Role string

// Input roles.
const (
	RoleImage           Role = "image"
	RoleTextInput       Role = "text_input"
	RoleState           Role = "state"
	RoleParam           Role = "param"
	RoleOptimizerState  Role = "optimizer_state"
	RoleLabels          Role = "labels"
	RoleLR              Role = "lr"
	RoleStep            Role = "step"
	RoleCSkipPrototypes Role = "cskip_prototypes"
	RoleCSkipK          Role = "cskip_k"
	RoleCSkipTail       Role = "cskip_tail"
	RoleLossScale       Role = "loss_scale"
	RoleInput           Role = "input"
)

// Output roles.
const (
	RoleLoss          Role = "loss"
	RoleParamNext     Role = "param_next"
	RoleStateNext     Role = "state_next"
	RoleGrad          Role = "grad"
	RoleLossScaleNext Role = "loss_scale_next"
	RoleCSkipClasses  Role = "cskip_classes"
	RoleLogits        Role = "logits"
	RoleOutput        Role = "output"
)

// ioRecords are the inputs and outputs the passes of one pipeline created, by name.
type ioRecords struct {
	ins, outs map[string]*IORecord
}

func newIORecords() *ioRecords {
	return &ioRecords{ins: map[string]*IORecord{}, outs: map[string]*IORecord{}}
}

// input records what the input name is for; the caller may fill in Param or Group.
func (r *ioRecords) input(name string, role Role, origin string) *IORecord {
	rec := &IORecord{Name: name, Role: role, Origin: origin}
	r.ins[name] = rec
	return rec
}

// output records what the output name is; the caller may fill in Param.
func (r *ioRecords) output(name string, role Role, origin string) *IORecord {
	rec := &IORecord{Name: name, Role: role, Origin: origin}
	r.outs[name] = rec
	return rec
}

// describe records a graph's inputs and outputs with their roles and origins: as the passes
// that created them recorded them, else as the source model's.
func describe(file string, m *graph.Model, man *Manifest, io *ioRecords) *GraphRecord {
	rec := &GraphRecord{File: file, DynamicReductions: grad.DynamicReductions(m.Graph)}
	for _, v := range m.Graph.Inputs {
		r := sourceInput(v, man)
		if p, ok := io.ins[v.Name]; ok {
			r = *p
		}
		r.Type, r.Optional = v.Type.String(), v.Const != nil
		rec.Inputs = append(rec.Inputs, r)
	}
	for _, v := range m.Graph.Outputs {
		r := sourceOutput(v)
		if p, ok := io.outs[v.Name]; ok {
			r = *p
		}
		r.Type = v.Type.String()
		rec.Outputs = append(rec.Outputs, r)
	}
	return rec
}

// sourceInput describes an input no pass created: a parameter of the manifest, the image or
// text inputs, or another input of the source model.
func sourceInput(v *graph.Value, man *Manifest) IORecord {
	r := IORecord{Name: v.Name}
	switch name := v.Name; {
	case man.Param(name) != nil:
		r.Role, r.Param = RoleParam, name
		r.Origin = paramOrigin(name, v.Const != nil)
	case man.Vision != nil && name == man.Vision.Input:
		r.Role, r.Origin = RoleImage, "preprocessed images [B,3,H,W], CLIP normalisation"
	case man.Text != nil && (name == man.Text.InputIDs || name == man.Text.AttentionMask):
		r.Role, r.Origin = RoleTextInput, "tokenised class prompts, one row per class"
	default:
		r.Role, r.Origin = RoleInput, "as in the source model"
	}
	return r
}

// paramOrigin says where a parameter input's value comes from: the train step's from the
// source's initializer and then the previous step, eval's (optional, with a default) from the
// trained parameter.
func paramOrigin(name string, optional bool) string {
	if optional {
		return "the trained value of parameter " + name + " (defaults to the source's initializer)"
	}
	return "initializer " + name + " of the source model (initial value); then the previous step's " + name + ".next"
}

// sourceOutput describes an output of the source model.
func sourceOutput(v *graph.Value) IORecord {
	r := IORecord{Name: v.Name, Role: RoleOutput, Origin: "as in the source model"}
	if strings.HasPrefix(v.Name, "logits") { // logits_per_image, logits_per_text
		r.Role = RoleLogits
	}
	return r
}
