package bundle

import (
	"strings"

	"github.com/skipgraph/skipgraph/graph"
	"github.com/skipgraph/skipgraph/rewrite"
	"github.com/skipgraph/skipgraph/rewrite/grad"
)

// describe records a graph's inputs and outputs with their roles and origins.
func describe(file string, m *graph.Model, man *Manifest) *GraphRecord {
	rec := &GraphRecord{File: file, DynamicReductions: grad.DynamicReductions(m.Graph)}
	for _, v := range m.Graph.Inputs {
		rec.Inputs = append(rec.Inputs, inputRecord(v, man))
	}
	for _, v := range m.Graph.Outputs {
		rec.Outputs = append(rec.Outputs, outputRecord(v, man))
	}
	return rec
}

func inputRecord(v *graph.Value, man *Manifest) IORecord {
	r := IORecord{Name: v.Name, Type: v.Type.String(), Optional: v.Const != nil}
	name := v.Name
	switch {
	case man.Param(name) != nil:
		r.Role, r.Param = "param", name
		r.Origin = "initializer " + name + " of the source model (initial value); then the previous step's " + name + ".next"
		if v.Const != nil {
			r.Origin = "the trained value of parameter " + name + " (defaults to the source's initializer)"
		}
	case name == LossScaleInput || name == LossScaleGood:
		r.Role = "loss_scale"
		r.Origin = "dynamic loss scaling: the scale (initially manifest loss_scale.init) and the count of finite steps since it last changed (initially 0); then the previous step's " + name + ".next"
	case strings.HasSuffix(name, ".momentum") || strings.HasSuffix(name, ".m") || strings.HasSuffix(name, ".v"):
		p := name[:strings.LastIndexByte(name, '.')]
		r.Role, r.Param = "optimizer_state", p
		r.Origin = "zeros of the parameter's shape at the first step; then the previous step's " + name + ".next"
	case strings.HasPrefix(name, "state."):
		r.Role = "state"
		r.Origin = "output " + name + " of " + FeaturesFile + " (the frozen prefix), cached"
	case name == "labels":
		r.Role, r.Origin = "labels", "the class index of each image of the batch (int64)"
	case strings.HasPrefix(name, "lr."):
		r.Role, r.Group = "lr", strings.TrimPrefix(name, "lr.")
		r.Origin = "the learning rate of group " + r.Group + " at this step (the host runs the schedule)"
	case name == "step":
		r.Role, r.Origin = "step", "the 1-based step number (AdamW bias correction)"
	case name == rewrite.CSkipPrototypes:
		r.Role, r.Origin = "cskip_prototypes", "normalised text_embeds of all classes from "+EvalFile+" with the initial weights, computed once"
	case name == rewrite.CSkipK:
		r.Role, r.Origin = "cskip_k", "K = min(ceil(ratio*C), max) for C classes"
	case name == rewrite.CSkipTail:
		r.Role, r.Origin = "cskip_tail", "rank positions beyond K kept this run, drawn once from the seed (may be empty)"
	case man.Vision != nil && name == man.Vision.Input:
		r.Role, r.Origin = "image", "preprocessed images [B,3,H,W], CLIP normalisation"
	case man.Text != nil && (name == man.Text.InputIDs || name == man.Text.AttentionMask):
		r.Role, r.Origin = "text_input", "tokenised class prompts, one row per class"
	default:
		r.Role, r.Origin = "input", "as in the source model"
	}
	return r
}

func outputRecord(v *graph.Value, man *Manifest) IORecord {
	r := IORecord{Name: v.Name, Type: v.Type.String()}
	name := v.Name
	switch {
	case name == "loss":
		r.Role, r.Origin = "loss", "mean softmax cross-entropy of logits_per_image against labels (before the update)"
	case strings.HasSuffix(name, "_grad") && man.Param(strings.TrimSuffix(name, "_grad")) != nil:
		r.Role, r.Param = "grad", strings.TrimSuffix(name, "_grad")
		r.Origin = "gradient of the loss with respect to " + r.Param + ", in its layout"
	case name == LossScaleInput+".next" || name == LossScaleGood+".next":
		r.Role, r.Origin = "loss_scale_next", "the loss-scaling state after this step: feed it back as "+strings.TrimSuffix(name, ".next")
	case strings.HasSuffix(name, ".next"):
		base := strings.TrimSuffix(name, ".next")
		if man.Param(base) != nil {
			r.Role, r.Param, r.Origin = "param_next", base, "the updated parameter: feed it back as "+base
		} else {
			r.Role, r.Param, r.Origin = "state_next", base[:strings.LastIndexByte(base, '.')], "the updated optimizer state: feed it back as "+base
		}
	case strings.HasPrefix(name, "state."):
		r.Role, r.Origin = "state", "the residual stream entering the first trained layer"
	case name == CSkipClassesOutput:
		r.Role, r.Origin = "cskip_classes", "the class ids kept at this step (ascending); labels were remapped to positions in it"
	case strings.HasPrefix(name, "logits"):
		r.Role, r.Origin = "logits", "as in the source model"
	default:
		r.Role, r.Origin = "output", "as in the source model"
	}
	return r
}
