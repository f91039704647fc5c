package synth

import (
	"math"
	"strconv"

	"github.com/skipgraph/skipgraph/graph"
)

// The HF style: transformers' CLIPModel (text_model, vision_model, visual_projection,
// text_projection, logit_scale) as torch.onnx exports it with constant folding.

func (b *builder) hfCombined() {
	d := b.d
	ids := b.input("input_ids", graph.Int64, b.textBatch("text_batch_size"), graph.Sym("sequence_length"))
	px := b.input("pixel_values", graph.Float, graph.Sym("image_batch_size"), fixed(3), fixed(d.ImageSize), fixed(d.ImageSize))
	mask := b.input("attention_mask", graph.Int64, b.textBatch("text_batch_size"), graph.Sym("sequence_length"))
	scale := b.logitScale()
	img := b.hfVision(px, "")
	txt := b.hfText(ids, mask, "")

	e := b.e
	imgN := e.l2Normalize("", img, -1, "image_embeds")
	txtN := e.l2Normalize("", txt, -1, "text_embeds")
	t := e.transpose("", imgN, 1, 0)
	sim := e.op("", "MatMul", []*graph.Value{txtN, t})
	ex := e.op("", "Exp", []*graph.Value{scale})
	lpt := e.opOut("", "Mul", "logits_per_text", []*graph.Value{sim, ex})
	lpi := e.opOut("", "Transpose", "logits_per_image", []*graph.Value{lpt}, graph.IntsAttr("perm", 1, 0))
	ib, tb := graph.Sym("image_batch_size"), b.textBatch("text_batch_size")
	b.output(lpi, graph.Float, ib, tb)
	b.output(lpt, graph.Float, tb, ib)
	b.output(txtN, graph.Float, tb, fixed(d.Embed))
	b.output(imgN, graph.Float, ib, fixed(d.Embed))
}

// hfSplit writes one tower with its projection, as transformers.js' text_model.onnx
// (CLIPTextModelWithProjection: input_ids only, no attention-mask branch) and vision_model.onnx.
func (b *builder) hfSplit(key string) {
	d := b.d
	if key == ModelText {
		ids := b.input("input_ids", graph.Int64, b.textBatch("batch_size"), graph.Sym("sequence_length"))
		y := b.hfText(ids, nil, "text_embeds")
		b.output(y, graph.Float, b.textBatch("batch_size"), fixed(d.Embed))
		return
	}
	px := b.input("pixel_values", graph.Float, graph.Sym("batch_size"), fixed(3), fixed(d.ImageSize), fixed(d.ImageSize))
	y := b.hfVision(px, "image_embeds")
	b.output(y, graph.Float, graph.Sym("batch_size"), fixed(d.Embed))
}

func (b *builder) hfVision(px *graph.Value, out string) *graph.Value {
	d, e, w := b.d, b.e, b.w
	const tw = TowerVision
	W, P, N := d.VisionWidth, d.PatchSize, d.Patches()
	p := "vision_model."
	cls := b.named(p+"embeddings.class_embedding", tw, -1, w.small(p+"embeddings.class_embedding", int64(W)))
	patchW := b.named(p+"embeddings.patch_embedding.weight", tw, -1,
		w.linear(p+"embeddings.patch_embedding.weight", []int64{int64(W), 3, int64(P), int64(P)}, 3*P*P))
	posW := b.named(p+"embeddings.position_embedding.weight", tw, -1, w.small(p+"embeddings.position_embedding.weight", int64(N), int64(W)))
	preW := b.named(p+"pre_layrnorm.weight", tw, -1, w.lnWeight(p+"pre_layrnorm.weight", int64(W)))
	preB := b.named(p+"pre_layrnorm.bias", tw, -1, w.small(p+"pre_layrnorm.bias", int64(W)))

	es := "/vision_model/embeddings"
	zero := e.i64s(es, 0)
	bsz := e.dimOf(es, px, 0)
	if b.model == ModelCombined {
		b.one = e.i64s(es+"/patch_embedding", 1)
	}
	conv := e.op(es+"/patch_embedding", "Conv", []*graph.Value{px, patchW},
		graph.IntsAttr("dilations", 1, 1), graph.IntAttr("group", 1), graph.IntsAttr("kernel_shape", int64(P), int64(P)),
		graph.IntsAttr("pads", 0, 0, 0, 0), graph.IntsAttr("strides", int64(P), int64(P)))
	// patch_embeds.flatten(2).transpose(1, 2)
	sh := e.op(es, "Shape", []*graph.Value{conv})
	axes, starts, ends := e.i64(es, 0), e.i64(es, 0), e.i64(es, 2)
	sl := e.op(es, "Slice", []*graph.Value{sh, starts, ends, axes})
	cat := e.op(es, "Concat", []*graph.Value{sl, e.i64(es, -1)}, graph.IntAttr("axis", 0))
	flat := e.op(es, "Reshape", []*graph.Value{conv, cat}, graph.IntAttr("allowzero", 0))
	patches := e.transpose(es, flat, 0, 2, 1)
	// class_embedding.expand(b, 1, -1), cat, + position_embedding(position_ids)
	c := e.expand(es, cls, bsz, 1, -1)
	x := e.op(es, "Concat", []*graph.Value{c, patches}, graph.IntAttr("axis", 1))
	pids := make([]int64, N)
	for i := range pids {
		pids[i] = int64(i)
	}
	pi := e.constant(es+"/position_embedding", graph.FromInt64([]int64{1, int64(N)}, pids))
	pos := e.op(es+"/position_embedding", "Gather", []*graph.Value{posW, pi})
	x = e.op(es, "Add", []*graph.Value{x, pos})
	x = e.layerNorm("/vision_model/pre_layrnorm", x, preW, preB)

	tower := &Tower{Name: tw, Layers: d.VisionLayers, Width: W, Heads: d.VisionHeads, MLP: d.VisionMLP,
		SeqLen: N, ImageSize: d.ImageSize, PatchSize: P}
	tower.boundaries = append(tower.boundaries, x)
	for i := 0; i < d.VisionLayers; i++ {
		x = b.hfLayer(tw, i, "/vision_model/encoder/layers."+strconv.Itoa(i), p+"encoder.layers."+strconv.Itoa(i)+".",
			x, nil, nil, W, d.VisionHeads, d.VisionMLP)
		tower.boundaries = append(tower.boundaries, x)
	}
	postW := b.named(p+"post_layernorm.weight", tw, -1, w.lnWeight(p+"post_layernorm.weight", int64(W)))
	postB := b.named(p+"post_layernorm.bias", tw, -1, w.small(p+"post_layernorm.bias", int64(W)))
	x = e.op("/vision_model", "Gather", []*graph.Value{x, zero}, graph.IntAttr("axis", 1))
	x = e.layerNorm("/vision_model/post_layernorm", x, postW, postB)
	proj := b.matmulT("visual_projection.weight", tw, -1, W, d.Embed)
	var y *graph.Value
	if out != "" {
		y = e.opOut("/visual_projection", "MatMul", out, []*graph.Value{x, proj})
	} else {
		y = e.op("/visual_projection", "MatMul", []*graph.Value{x, proj})
	}
	tower.embeds = y
	b.addTower(tower)
	return y
}

func (b *builder) hfText(ids, mask *graph.Value, out string) *graph.Value {
	d, e, w := b.d, b.e, b.w
	const tw = TowerText
	W, S := d.TextWidth, d.Context
	p := "text_model."
	tokW := b.named(p+"embeddings.token_embedding.weight", tw, -1, w.small(p+"embeddings.token_embedding.weight", int64(d.Vocab), int64(W)))
	posW := b.named(p+"embeddings.position_embedding.weight", tw, -1, w.normal(p+"embeddings.position_embedding.weight", []int64{int64(S), int64(W)}, 0, 0.01))

	ts := "/text_model"
	bsz := e.dimOf(ts, ids, 0)
	seq := e.dimOf(ts, ids, 1)
	es := ts + "/embeddings"
	tok := e.op(es+"/token_embedding", "Gather", []*graph.Value{tokW, ids})
	pids := make([]int64, S)
	for i := range pids {
		pids[i] = int64(i)
	}
	posIDs := e.anonConst("Slice", graph.FromInt64([]int64{1, int64(S)}, pids))
	st := e.i64(es, 0)
	end := e.unsqueeze(es, seq, 0)
	ax, step := e.i64(es, 1), e.i64(es, 1)
	sl := e.op(es, "Slice", []*graph.Value{posIDs, st, end, ax, step})
	pos := e.op(es+"/position_embedding", "Gather", []*graph.Value{posW, sl})
	x := e.op(es, "Add", []*graph.Value{tok, pos})

	// causal mask: full((t, t), min).triu(1)[None, None].expand(b, 1, t, t)
	full := e.shapeList(ts, true, seq, seq)
	cm := e.op(ts, "ConstantOfShape", []*graph.Value{full}, graph.TensorAttr("value", graph.FromFloat32([]int64{1}, []float32{float32(negInf32)})))
	one := b.one
	if one == nil {
		one = e.anonConst("Trilu", graph.FromInt64(nil, []int64{1}))
	}
	cm = e.op(ts, "Trilu", []*graph.Value{cm, one}, graph.IntAttr("upper", 1))
	cm = e.unsqueeze(ts, cm, 0)
	cm = e.unsqueeze(ts, cm, 1)
	cm = e.expand(ts, cm, bsz, 1, seq, seq)
	// attention mask: (1 - mask[:, None, None, :]).expand(b, 1, t, t) * min
	var am *graph.Value
	if mask != nil {
		m := e.unsqueeze(ts, mask, 1)
		m = e.unsqueeze(ts, m, 2)
		m = e.op(ts, "Cast", []*graph.Value{m}, graph.IntAttr("to", int64(graph.Float)))
		m = e.op(ts, "Sub", []*graph.Value{e.f32s(ts, 1), m})
		m = e.expand(ts, m, bsz, 1, seq, seq)
		am = e.op(ts, "Mul", []*graph.Value{m, e.f32s(ts, negInf32)})
	}

	tower := &Tower{Name: tw, Layers: d.TextLayers, Width: W, Heads: d.TextHeads, MLP: d.TextMLP,
		SeqLen: S, Vocab: d.Vocab, EOS: d.Vocab - 1}
	tower.boundaries = append(tower.boundaries, x)
	for i := 0; i < d.TextLayers; i++ {
		x = b.hfLayer(tw, i, ts+"/encoder/layers."+strconv.Itoa(i), p+"encoder.layers."+strconv.Itoa(i)+".",
			x, cm, am, W, d.TextHeads, d.TextMLP)
		tower.boundaries = append(tower.boundaries, x)
	}
	lnW := b.named(p+"final_layer_norm.weight", tw, -1, w.lnWeight(p+"final_layer_norm.weight", int64(W)))
	lnB := b.named(p+"final_layer_norm.bias", tw, -1, w.small(p+"final_layer_norm.bias", int64(W)))
	x = e.layerNorm(ts+"/final_layer_norm", x, lnW, lnB)

	// (input_ids.to(torch.int) == eos).int().argmax(dim=-1), then x[arange(b), idx]
	c := e.op(ts, "Cast", []*graph.Value{ids}, graph.IntAttr("to", int64(graph.Int32)))
	c = e.op(ts, "Cast", []*graph.Value{c}, graph.IntAttr("to", int64(graph.Int64)))
	eq := e.op(ts, "Equal", []*graph.Value{c, e.i64s(ts, int64(d.Vocab-1))})
	c = e.op(ts, "Cast", []*graph.Value{eq}, graph.IntAttr("to", int64(graph.Int32)))
	idx := e.op(ts, "ArgMax", []*graph.Value{c}, graph.IntAttr("axis", -1), graph.IntAttr("keepdims", 0), graph.IntAttr("select_last_index", 0))
	pooled := e.eotPool(ts, x, idx, bsz)
	proj := b.matmulT("text_projection.weight", tw, -1, W, d.Embed)
	var y *graph.Value
	if out != "" {
		y = e.opOut("/text_projection", "MatMul", out, []*graph.Value{pooled, proj})
	} else {
		y = e.op("/text_projection", "MatMul", []*graph.Value{pooled, proj})
	}
	tower.embeds = y
	b.addTower(tower)
	return y
}

// hfLayer is CLIPEncoderLayer: x + attn(ln1(x)), then + mlp(ln2(x)).
func (b *builder) hfLayer(tw string, li int, s, p string, x, causal, amask *graph.Value, W, H, M int) *graph.Value {
	e, w := b.e, b.w
	bias := func(name string, n int) *graph.Value { return b.named(p+name, tw, li, w.small(p+name, int64(n))) }
	kb := bias("self_attn.k_proj.bias", W)
	vb := bias("self_attn.v_proj.bias", W)
	qb := bias("self_attn.q_proj.bias", W)
	ob := bias("self_attn.out_proj.bias", W)
	ln1w := b.named(p+"layer_norm1.weight", tw, li, w.lnWeight(p+"layer_norm1.weight", int64(W)))
	ln1b := bias("layer_norm1.bias", W)
	fc1b := bias("mlp.fc1.bias", M)
	fc2b := bias("mlp.fc2.bias", W)
	ln2w := b.named(p+"layer_norm2.weight", tw, li, w.lnWeight(p+"layer_norm2.weight", int64(W)))
	ln2b := bias("layer_norm2.bias", W)

	h := e.layerNorm(s+"/layer_norm1", x, ln1w, ln1b)
	a := b.hfAttention(tw, li, s+"/self_attn", p+"self_attn.", h, causal, amask, W, H, qb, kb, vb, ob)
	x = e.op(s, "Add", []*graph.Value{x, a})
	h = e.layerNorm(s+"/layer_norm2", x, ln2w, ln2b)
	h = e.linear3(s+"/mlp/fc1", h, b.matmulT(p+"mlp.fc1.weight", tw, li, W, M), fc1b)
	h = e.gelu(s+"/mlp", b.cfg.Gelu, h)
	h = e.linear3(s+"/mlp/fc2", h, b.matmulT(p+"mlp.fc2.weight", tw, li, M, W), fc2b)
	return e.op(s, "Add", []*graph.Value{x, h})
}

// hfAttention is CLIPAttention: batch-first, q scaled after its projection, heads split by
// view/transpose, bmm, the causal and attention masks added on a [b, h, t, t] view.
func (b *builder) hfAttention(tw string, li int, sa, p string, h, causal, amask *graph.Value, W, H int, qb, kb, vb, ob *graph.Value) *graph.Value {
	e := b.e
	hd := W / H
	bsz := e.dimOf(sa, h, 0)
	tgt := e.dimOf(sa, h, 1)
	emb := e.dimOf(sa, h, 2)
	q := e.linear3(sa+"/q_proj", h, b.matmulT(p+"q_proj.weight", tw, li, W, W), qb)
	q = e.op(sa, "Mul", []*graph.Value{q, e.f32s(sa, math.Pow(float64(hd), -0.5))})
	k := e.linear3(sa+"/k_proj", h, b.matmulT(p+"k_proj.weight", tw, li, W, W), kb)
	kShape := e.shapeList(sa, true, bsz, -1, H, hd)
	vShape := e.shapeList(sa, true, bsz, -1, H, hd)
	k = e.op(sa, "Reshape", []*graph.Value{k, kShape}, graph.IntAttr("allowzero", 0))
	k = e.transpose(sa, k, 0, 2, 1, 3)
	v := e.linear3(sa+"/v_proj", h, b.matmulT(p+"v_proj.weight", tw, li, W, W), vb)
	v = e.op(sa, "Reshape", []*graph.Value{v, vShape}, graph.IntAttr("allowzero", 0))
	v = e.transpose(sa, v, 0, 2, 1, 3)
	bh := e.op(sa, "Mul", []*graph.Value{bsz, e.i64s(sa, int64(H))})
	qShape := e.shapeList(sa, true, bsz, tgt, H, hd)
	q = e.op(sa, "Reshape", []*graph.Value{q, qShape}, graph.IntAttr("allowzero", 0))
	q = e.transpose(sa, q, 0, 2, 1, 3)
	s3 := e.shapeList(sa, true, bh, -1, hd)
	s4 := e.shapeList(sa, true, bh, -1, hd)
	s5 := e.shapeList(sa, true, bh, -1, hd)
	q = e.op(sa, "Reshape", []*graph.Value{q, s3}, graph.IntAttr("allowzero", 0))
	k = e.op(sa, "Reshape", []*graph.Value{k, s4}, graph.IntAttr("allowzero", 0))
	v = e.op(sa, "Reshape", []*graph.Value{v, s5}, graph.IntAttr("allowzero", 0))
	kt := e.transpose(sa, k, 0, 2, 1)
	att := e.op(sa, "MatMul", []*graph.Value{q, kt})
	if causal != nil {
		c4 := e.shapeList(sa, true, bsz, H, tgt, tgt)
		var c4b *graph.Value
		if amask != nil {
			c4b = e.shapeList(sa, true, bsz, H, tgt, tgt)
		}
		att = e.op(sa, "Reshape", []*graph.Value{att, c4}, graph.IntAttr("allowzero", 0))
		att = e.op(sa, "Add", []*graph.Value{att, causal})
		c3 := e.shapeList(sa, true, bh, tgt, tgt)
		var c3b *graph.Value
		if amask != nil {
			c3b = e.shapeList(sa, true, bh, tgt, tgt)
		}
		att = e.op(sa, "Reshape", []*graph.Value{att, c3}, graph.IntAttr("allowzero", 0))
		if amask != nil {
			att = e.op(sa, "Reshape", []*graph.Value{att, c4b}, graph.IntAttr("allowzero", 0))
			att = e.op(sa, "Add", []*graph.Value{att, amask})
			att = e.op(sa, "Reshape", []*graph.Value{att, c3b}, graph.IntAttr("allowzero", 0))
		}
	}
	att = e.op(sa, "Softmax", []*graph.Value{att}, graph.IntAttr("axis", -1))
	o := e.op(sa, "MatMul", []*graph.Value{att, v})
	oShape := e.shapeList(sa, true, bsz, H, tgt, hd)
	o = e.op(sa, "Reshape", []*graph.Value{o, oShape}, graph.IntAttr("allowzero", 0))
	o = e.transpose(sa, o, 0, 2, 1, 3)
	fShape := e.shapeList(sa, true, bsz, tgt, emb)
	o = e.op(sa, "Reshape", []*graph.Value{o, fShape}, graph.IntAttr("allowzero", 0))
	return e.linear3(sa+"/out_proj", o, b.matmulT(p+"out_proj.weight", tw, li, W, W), ob)
}
