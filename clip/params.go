package clip

import (
	"strconv"
	"strings"

	"github.com/skipgraph/skipgraph/graph"
)

// family decides the naming family: initializer names are hints; without them the structure
// decides (a sequence-first transformer, a packed or sliced in-projection with a Gemm output
// projection are OpenAI's nn.MultiheadAttention).
func (a *analyzer) family(s *Structure) Family {
	hf, oa := 0, 0
	for _, v := range a.g.Initializers {
		switch n := v.Name; {
		case strings.HasPrefix(n, "vision_model.") || strings.HasPrefix(n, "text_model."):
			hf++
		case strings.HasPrefix(n, "visual.") || strings.Contains(n, "resblocks.") || n == "positional_embedding" || strings.HasPrefix(n, "ln_final."):
			oa++
		}
	}
	if hf != oa {
		if hf > oa {
			return FamilyHF
		}
		return FamilyOpenAI
	}
	for _, t := range s.Towers() {
		if t.Layout == SequenceFirst {
			return FamilyOpenAI
		}
		for _, l := range t.Layers {
			if l.Attention.Packed || l.Attention.Out.Op == "Gemm" {
				return FamilyOpenAI
			}
		}
	}
	return FamilyHF
}

// nameParams gives every parameter found its canonical name and lists the float initializers
// left over.
func (a *analyzer) nameParams(s *Structure) {
	seen := map[string]bool{}
	add := func(canon string, v *graph.Value, transposed bool, rows []int64, tower TowerKind, layer int, role Role) {
		if v == nil || v.Const == nil {
			return
		}
		key := canon + "\x00" + v.Name
		if seen[key] {
			return
		}
		seen[key] = true
		s.Params = append(s.Params, &Param{Canonical: canon, Initializer: v.Name, Transposed: transposed, Rows: rows,
			Shape: append([]int64{}, v.Const.Dims...), Tower: tower, Layer: layer, Role: role, value: v})
	}
	byName := func(n string) *graph.Value { return paramByName(a.g, n) }
	norm := func(prefix string, ln *Norm, tower TowerKind, layer int, role Role) {
		if ln == nil {
			return
		}
		add(prefix+".weight", byName(ln.Weight), false, nil, tower, layer, role)
		add(prefix+".bias", byName(ln.Bias), false, nil, tower, layer, role)
	}
	// linear names an nn.Linear (weight [out, in] in torch).
	linear := func(prefix string, l *Linear, tower TowerKind, layer int, role Role) {
		add(prefix+".weight", l.weight, l.WeightTransposed, nil, tower, layer, role)
		add(prefix+".bias", l.bias, false, nil, tower, layer, role)
	}
	hf := s.Family == FamilyHF
	for _, t := range s.Towers() {
		var p string // prefix
		switch {
		case hf && t.Kind == Vision:
			p = "vision_model."
		case hf:
			p = "text_model."
		case t.Kind == Vision:
			p = "visual."
		}
		k := t.Kind
		e := t.Embedding
		if hf {
			add(p+"embeddings.patch_embedding.weight", byName(e.PatchWeight), false, nil, k, -1, RoleEmbedding)
			add(p+"embeddings.class_embedding", byName(e.ClassEmbedding), false, nil, k, -1, RoleEmbedding)
			add(p+"embeddings.token_embedding.weight", byName(e.TokenEmbedding), false, nil, k, -1, RoleEmbedding)
			add(p+"embeddings.position_embedding.weight", byName(e.PositionEmbedding), false, nil, k, -1, RoleEmbedding)
			norm(p+"pre_layrnorm", t.PreNorm, k, -1, RolePreNorm)
		} else {
			add(p+"conv1.weight", byName(e.PatchWeight), false, nil, k, -1, RoleEmbedding)
			add(p+"class_embedding", byName(e.ClassEmbedding), false, nil, k, -1, RoleEmbedding)
			add(p+"token_embedding.weight", byName(e.TokenEmbedding), false, nil, k, -1, RoleEmbedding)
			add(p+"positional_embedding", byName(e.PositionEmbedding), false, nil, k, -1, RoleEmbedding)
			norm(p+"ln_pre", t.PreNorm, k, -1, RolePreNorm)
		}
		for _, l := range t.Layers {
			i := l.Index
			if hf {
				lp := p + "encoder.layers." + strconv.Itoa(i) + "."
				norm(lp+"layer_norm1", &l.LN1, k, i, RoleLayer)
				linear(lp+"self_attn.q_proj", &l.Attention.Q, k, i, RoleLayer)
				linear(lp+"self_attn.k_proj", &l.Attention.K, k, i, RoleLayer)
				linear(lp+"self_attn.v_proj", &l.Attention.V, k, i, RoleLayer)
				linear(lp+"self_attn.out_proj", &l.Attention.Out, k, i, RoleLayer)
				norm(lp+"layer_norm2", &l.LN2, k, i, RoleLayer)
				linear(lp+"mlp.fc1", &l.MLP.FC1, k, i, RoleLayer)
				linear(lp+"mlp.fc2", &l.MLP.FC2, k, i, RoleLayer)
				continue
			}
			lp := p + "transformer.resblocks." + strconv.Itoa(i) + "."
			norm(lp+"ln_1", &l.LN1, k, i, RoleLayer)
			at := &l.Attention
			if at.Packed {
				add(lp+"attn.in_proj_weight", at.Q.weight, at.Q.WeightTransposed, nil, k, i, RoleLayer)
				add(lp+"attn.in_proj_bias", at.Q.bias, false, nil, k, i, RoleLayer)
			} else {
				for j, q := range []*Linear{&at.Q, &at.K, &at.V} {
					tag := "[" + string("qkv"[j]) + "]"
					n := int64(q.OutFeatures)
					rows := []int64{int64(j) * n, int64(j+1) * n}
					add(lp+"attn.in_proj_weight"+tag, q.weight, q.WeightTransposed, rows, k, i, RoleLayer)
					add(lp+"attn.in_proj_bias"+tag, q.bias, false, rows, k, i, RoleLayer)
				}
			}
			linear(lp+"attn.out_proj", &at.Out, k, i, RoleLayer)
			norm(lp+"ln_2", &l.LN2, k, i, RoleLayer)
			linear(lp+"mlp.c_fc", &l.MLP.FC1, k, i, RoleLayer)
			linear(lp+"mlp.c_proj", &l.MLP.FC2, k, i, RoleLayer)
		}
		switch {
		case hf && k == Vision:
			norm(p+"post_layernorm", t.PostNorm, k, -1, RolePostNorm)
		case hf:
			norm(p+"final_layer_norm", t.PostNorm, k, -1, RolePostNorm)
		case k == Vision:
			norm(p+"ln_post", t.PostNorm, k, -1, RolePostNorm)
		default:
			norm("ln_final", t.PostNorm, k, -1, RolePostNorm)
		}
		if pr := t.Projection; pr != nil {
			switch {
			case hf && k == Vision:
				linear("visual_projection", pr, k, -1, RoleProjection)
			case hf:
				linear("text_projection", pr, k, -1, RoleProjection)
			case k == Vision:
				// x @ proj: the parameter is [in, out], stored as is by a MatMul.
				add("visual.proj", pr.weight, !pr.WeightTransposed, nil, k, -1, RoleProjection)
			default:
				add("text_projection", pr.weight, !pr.WeightTransposed, nil, k, -1, RoleProjection)
			}
		}
	}
	if ls := s.Head.LogitScale; ls.Initializer != "" && !ls.Folded {
		add("logit_scale", byName(ls.Initializer), false, nil, "", -1, RoleLogitScale)
	}
	// Leftovers: float initializers with more than one element that are neither parameters nor
	// mask buffers.
	used := map[string]bool{}
	for _, p := range s.Params {
		used[p.Initializer] = true
	}
	for _, t := range s.Towers() {
		for _, m := range t.Masks {
			used[m.Value] = true
		}
	}
	for _, v := range a.g.Initializers {
		if used[v.Name] || !v.Const.DType.IsFloat() || v.Const.NumElements() <= 1 || a.maskBuffer(s, v) {
			continue
		}
		s.Unmapped = append(s.Unmapped, v.Name)
	}
}

// maskBuffer reports whether an initializer only feeds a tower's attention masks.
func (a *analyzer) maskBuffer(s *Structure, v *graph.Value) bool {
	for _, t := range s.Towers() {
		for _, l := range t.Layers {
			for _, m := range l.maskValues {
				if m == v || reaches(m, v, nil, 50) {
					return true
				}
			}
		}
	}
	return false
}
