package synth

import (
	"math"
	"strconv"

	"github.com/skipgraph/skipgraph/graph"
)

// The OpenAI style: openai/CLIP's model code (and open_clip's, which keeps its parameter names)
// as torch.onnx exports it with constant folding. encode_image and encode_text are methods of the
// root module, so the text tower's nodes sit in the root scope.

func (b *builder) oaCombined() {
	d := b.d
	img := b.input("image", graph.Float, graph.Sym("image_batch_size"), fixed(3), fixed(d.ImageSize), fixed(d.ImageSize))
	txt := b.input("text", graph.Int64, b.textBatch("text_batch_size"), fixed(d.Context))
	scale := b.oaRootParams()
	ie := b.oaVision(img, "")
	te := b.oaText(txt, "")

	e := b.e
	ie = e.l2Normalize("", ie, 1, "")
	te = e.l2Normalize("", te, 1, "")
	ls := e.op("", "Exp", []*graph.Value{scale})
	m := e.op("", "Mul", []*graph.Value{ls, ie})
	t := e.transpose("", te, 1, 0)
	lpi := e.opOut("", "MatMul", "logits_per_image", []*graph.Value{m, t})
	lpt := e.opOut("", "Transpose", "logits_per_text", []*graph.Value{lpi}, graph.IntsAttr("perm", 1, 0))
	ib, tb := graph.Sym("image_batch_size"), b.textBatch("text_batch_size")
	b.output(lpi, graph.Float, ib, tb)
	b.output(lpt, graph.Float, tb, ib)
}

// oaRootParams adds the root module's own parameters in their registration order and returns
// logit_scale.
func (b *builder) oaRootParams() *graph.Value {
	return b.logitScale()
}

func (b *builder) oaSplit(key string) {
	d := b.d
	if key == ModelText {
		ids := b.input("input_ids", graph.Int64, b.textBatch("batch_size"), fixed(d.Context))
		y := b.oaText(ids, "text_embeds")
		b.output(y, graph.Float, b.textBatch("batch_size"), fixed(d.Embed))
		return
	}
	px := b.input("pixel_values", graph.Float, graph.Sym("batch_size"), fixed(3), fixed(d.ImageSize), fixed(d.ImageSize))
	y := b.oaVision(px, "image_embeds")
	b.output(y, graph.Float, graph.Sym("batch_size"), fixed(d.Embed))
}

// oaLayerNorm is OpenAI's LayerNorm subclass: the input cast to float32, LayerNorm, the result
// cast back to the input's type.
func (b *builder) oaLayerNorm(s string, x, w, bias *graph.Value) *graph.Value {
	e := b.e
	x = e.op(s, "Cast", []*graph.Value{x}, graph.IntAttr("to", int64(graph.Float)))
	x = e.layerNorm(s, x, w, bias)
	return e.op(s, "Cast", []*graph.Value{x}, graph.IntAttr("to", int64(graph.Float)))
}

func (b *builder) oaVision(px *graph.Value, out string) *graph.Value {
	d, e, w := b.d, b.e, b.w
	const tw = TowerVision
	W, P, N := d.VisionWidth, d.PatchSize, d.Patches()
	p := "visual."
	scale := 1 / math.Sqrt(float64(W))
	conv1 := b.named(p+"conv1.weight", tw, -1, w.linear(p+"conv1.weight", []int64{int64(W), 3, int64(P), int64(P)}, 3*P*P))
	cls := b.named(p+"class_embedding", tw, -1, w.normal(p+"class_embedding", []int64{int64(W)}, 0, scale))
	posE := b.named(p+"positional_embedding", tw, -1, w.normal(p+"positional_embedding", []int64{int64(N), int64(W)}, 0, 0.1*scale))
	preW := b.named(p+"ln_pre.weight", tw, -1, w.lnWeight(p+"ln_pre.weight", int64(W)))
	preB := b.named(p+"ln_pre.bias", tw, -1, w.small(p+"ln_pre.bias", int64(W)))

	vs := "/visual"
	x := e.op(vs+"/conv1", "Conv", []*graph.Value{px, conv1},
		graph.IntsAttr("dilations", 1, 1), graph.IntAttr("group", 1), graph.IntsAttr("kernel_shape", int64(P), int64(P)),
		graph.IntsAttr("pads", 0, 0, 0, 0), graph.IntsAttr("strides", int64(P), int64(P)))
	// x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
	n0 := e.dimOf(vs, x, 0)
	n1 := e.dimOf(vs, x, 1)
	x = e.reshape(vs, x, n0, n1, -1)
	x = e.transpose(vs, x, 0, 2, 1)
	// cat([class_embedding + zeros(x.shape[0], 1, x.shape[-1]), x], dim=1) + positional_embedding
	zb := e.dimOf(vs, x, 0)
	zd := e.dimOf(vs, x, -1)
	zs := e.shapeList(vs, true, zb, 1, zd)
	z := e.op(vs, "ConstantOfShape", []*graph.Value{zs}, graph.TensorAttr("value", graph.FromFloat32([]int64{1}, []float32{0})))
	c := e.op(vs, "Add", []*graph.Value{cls, z})
	x = e.op(vs, "Concat", []*graph.Value{c, x}, graph.IntAttr("axis", 1))
	x = e.op(vs, "Add", []*graph.Value{x, posE})
	x = b.oaLayerNorm(vs+"/ln_pre", x, preW, preB)
	x = e.transpose(vs, x, 1, 0, 2)

	tower := &Tower{Name: tw, Layers: d.VisionLayers, Width: W, Heads: d.VisionHeads, MLP: d.VisionMLP,
		SeqLen: N, ImageSize: d.ImageSize, PatchSize: P, SequenceFirst: true}
	tower.boundaries = append(tower.boundaries, x)
	for i := 0; i < d.VisionLayers; i++ {
		x = b.oaBlock(tw, i, vs+"/transformer/resblocks/resblocks."+strconv.Itoa(i), p+"transformer.resblocks."+strconv.Itoa(i)+".",
			x, nil, W, d.VisionHeads, d.VisionMLP)
		tower.boundaries = append(tower.boundaries, x)
	}
	postW := b.named(p+"ln_post.weight", tw, -1, w.lnWeight(p+"ln_post.weight", int64(W)))
	postB := b.named(p+"ln_post.bias", tw, -1, w.small(p+"ln_post.bias", int64(W)))
	proj := b.named(p+"proj", tw, -1, w.linear(p+"proj", []int64{int64(W), int64(d.Embed)}, W))
	x = e.transpose(vs, x, 1, 0, 2)
	x = e.op(vs, "Gather", []*graph.Value{x, e.i64s(vs, 0)}, graph.IntAttr("axis", 1))
	x = b.oaLayerNorm(vs+"/ln_post", x, postW, postB)
	var y *graph.Value
	if out != "" {
		y = e.opOut(vs, "MatMul", out, []*graph.Value{x, proj})
	} else {
		y = e.op(vs, "MatMul", []*graph.Value{x, proj})
	}
	tower.embeds = y
	b.addTower(tower)
	return y
}

func (b *builder) oaText(ids *graph.Value, out string) *graph.Value {
	d, e, w := b.d, b.e, b.w
	const tw = TowerText
	W, S := d.TextWidth, d.Context
	tokW := b.named("token_embedding.weight", tw, -1, w.small("token_embedding.weight", int64(d.Vocab), int64(W)))
	posE := b.named("positional_embedding", tw, -1, w.normal("positional_embedding", []int64{int64(S), int64(W)}, 0, 0.01))
	// build_attention_mask(): -inf above the diagonal, a constant shared by every block
	mv := make([]float32, S*S)
	for i := 0; i < S; i++ {
		for j := i + 1; j < S; j++ {
			mv[i*S+j] = float32(math.Inf(-1))
		}
	}
	mask := b.e.anonWeight("Add", graph.FromFloat32([]int64{int64(S), int64(S)}, mv))
	b.buffers = append(b.buffers, bufferRec{model: b.model, role: "causal_mask", v: mask})

	x := e.op("/token_embedding", "Gather", []*graph.Value{tokW, ids})
	x = e.op("", "Add", []*graph.Value{x, posE})
	x = e.transpose("", x, 1, 0, 2)
	tower := &Tower{Name: tw, Layers: d.TextLayers, Width: W, Heads: d.TextHeads, MLP: d.TextMLP,
		SeqLen: S, Vocab: d.Vocab, EOS: d.Vocab - 1, SequenceFirst: true}
	tower.boundaries = append(tower.boundaries, x)
	for i := 0; i < d.TextLayers; i++ {
		x = b.oaBlock(tw, i, "/transformer/resblocks/resblocks."+strconv.Itoa(i), "transformer.resblocks."+strconv.Itoa(i)+".",
			x, mask, W, d.TextHeads, d.TextMLP)
		tower.boundaries = append(tower.boundaries, x)
	}
	x = e.transpose("", x, 1, 0, 2)
	lnW := b.named("ln_final.weight", tw, -1, w.lnWeight("ln_final.weight", int64(W)))
	lnB := b.named("ln_final.bias", tw, -1, w.small("ln_final.bias", int64(W)))
	proj := b.named("text_projection", tw, -1, w.linear("text_projection", []int64{int64(W), int64(d.Embed)}, W))
	x = b.oaLayerNorm("/ln_final", x, lnW, lnB)
	// x[torch.arange(x.shape[0]), text.argmax(dim=-1)] @ text_projection
	n := e.dimOf("", x, 0)
	idx := e.op("", "ArgMax", []*graph.Value{ids}, graph.IntAttr("axis", -1), graph.IntAttr("keepdims", 0), graph.IntAttr("select_last_index", 0))
	x = e.eotPool("", x, idx, n)
	var y *graph.Value
	if out != "" {
		y = e.opOut("", "MatMul", out, []*graph.Value{x, proj})
	} else {
		y = e.op("", "MatMul", []*graph.Value{x, proj})
	}
	tower.embeds = y
	b.addTower(tower)
	return y
}

// oaBlock is ResidualAttentionBlock: x + attn(ln_1(x)), then + mlp(ln_2(x)), on [L, N, D].
func (b *builder) oaBlock(tw string, li int, s, p string, x, mask *graph.Value, W, H, M int) *graph.Value {
	e, w := b.e, b.w
	// nn.MultiheadAttention's packed in-projection: folded by the exporter into q/k/v slices,
	// or kept packed (one MatMul, then a Split)
	ipw := p + "attn.in_proj_weight"
	ipb := p + "attn.in_proj_bias"
	var qkvW, qkvB [3]*graph.Value
	var packedW, packedB *graph.Value
	if b.cfg.PackedInProj {
		packedW = b.param(ipw, ipw, tw, li, w.linear(ipw, []int64{int64(W), int64(3 * W)}, W), "MatMul", true, nil)
		packedB = b.param(ipb, ipb, tw, li, w.small(ipb, int64(3*W)), "Add", false, nil)
	} else {
		for j, part := range []string{"q", "k", "v"} {
			rows := []int64{int64(j * W), int64((j + 1) * W)}
			cw := ipw + "[" + part + "]"
			qkvW[j] = b.param(cw, ipw, tw, li, w.linear(cw, []int64{int64(W), int64(W)}, W), "MatMul", true, rows)
			cb := ipb + "[" + part + "]"
			qkvB[j] = b.param(cb, ipb, tw, li, w.small(cb, int64(W)), "Add", false, rows)
		}
	}
	ow := b.named(p+"attn.out_proj.weight", tw, li, w.linear(p+"attn.out_proj.weight", []int64{int64(W), int64(W)}, W))
	ob := b.named(p+"attn.out_proj.bias", tw, li, w.small(p+"attn.out_proj.bias", int64(W)))
	ln1w := b.named(p+"ln_1.weight", tw, li, w.lnWeight(p+"ln_1.weight", int64(W)))
	ln1b := b.named(p+"ln_1.bias", tw, li, w.small(p+"ln_1.bias", int64(W)))
	fcb := b.named(p+"mlp.c_fc.bias", tw, li, w.small(p+"mlp.c_fc.bias", int64(M)))
	prb := b.named(p+"mlp.c_proj.bias", tw, li, w.small(p+"mlp.c_proj.bias", int64(W)))
	ln2w := b.named(p+"ln_2.weight", tw, li, w.lnWeight(p+"ln_2.weight", int64(W)))
	ln2b := b.named(p+"ln_2.bias", tw, li, w.small(p+"ln_2.bias", int64(W)))

	h := b.oaLayerNorm(s+"/ln_1", x, ln1w, ln1b)
	var q, k, v *graph.Value
	if packedW != nil {
		qkv := e.linear3(s+"/attn", h, packedW, packedB)
		parts := e.opN(s+"/attn", "Split", []*graph.Value{qkv, e.i64(s+"/attn", int64(W), int64(W), int64(W))}, 3, graph.IntAttr("axis", -1))
		q, k, v = parts[0], parts[1], parts[2]
	} else {
		q = e.linear3(s+"/attn", h, qkvW[0], qkvB[0])
		k = e.linear3(s+"/attn", h, qkvW[1], qkvB[1])
		v = e.linear3(s+"/attn", h, qkvW[2], qkvB[2])
	}
	a := b.oaAttention(s+"/attn", q, k, v, mask, W, H, ow, ob)
	x = e.op(s, "Add", []*graph.Value{x, a})
	h = b.oaLayerNorm(s+"/ln_2", x, ln2w, ln2b)
	h = e.linear3(s+"/mlp/c_fc", h, b.matmulT(p+"mlp.c_fc.weight", tw, li, W, M), fcb)
	h = e.gelu(s+"/mlp/gelu", b.cfg.Gelu, h)
	h = e.linear3(s+"/mlp/c_proj", h, b.matmulT(p+"mlp.c_proj.weight", tw, li, M, W), prb)
	return e.op(s, "Add", []*graph.Value{x, h})
}

// oaAttention is F.multi_head_attention_forward on [L, N, E] with need_weights=False, from the
// q/k/v projections: view(L, N*H, hd).transpose(0, 1), q / sqrt(hd), bmm (plus the mask), softmax,
// bmm, transpose back, view(L*N, E), the out projection as Gemm, view(L, N, E).
func (b *builder) oaAttention(sa string, q, k, v, mask *graph.Value, W, H int, ow, ob *graph.Value) *graph.Value {
	e := b.e
	hd := W / H
	tgt := e.dimOf(sa, q, 0)
	bsz := e.dimOf(sa, q, 1)
	emb := e.dimOf(sa, q, 2)
	bh := e.op(sa, "Mul", []*graph.Value{bsz, e.i64s(sa, int64(H))})
	q = e.reshape(sa, q, tgt, bh, hd)
	q = e.transpose(sa, q, 1, 0, 2)
	kl := e.dimOf(sa, k, 0)
	k = e.reshape(sa, k, kl, bh, hd)
	k = e.transpose(sa, k, 1, 0, 2)
	vl := e.dimOf(sa, v, 0)
	v = e.reshape(sa, v, vl, bh, hd)
	v = e.transpose(sa, v, 1, 0, 2)
	q = e.op(sa, "Div", []*graph.Value{q, e.f32s(sa, math.Sqrt(float64(hd)))})
	kt := e.transpose(sa, k, 0, 2, 1)
	att := e.op(sa, "MatMul", []*graph.Value{q, kt})
	if mask != nil {
		att = e.op(sa, "Add", []*graph.Value{att, mask})
	}
	att = e.op(sa, "Softmax", []*graph.Value{att}, graph.IntAttr("axis", -1))
	o := e.op(sa, "MatMul", []*graph.Value{att, v})
	o = e.transpose(sa, o, 1, 0, 2)
	lb := e.op(sa, "Mul", []*graph.Value{tgt, bsz})
	o = e.reshape(sa, o, lb, emb)
	o = e.op(sa, "Gemm", []*graph.Value{o, ow, ob}, graph.FloatAttr("alpha", 1), graph.FloatAttr("beta", 1), graph.IntAttr("transB", 1))
	od := e.dimOf(sa, o, 1)
	return e.reshape(sa, o, tgt, bsz, od)
}
