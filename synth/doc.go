// Package synth generates CLIP models with seeded random weights whose graphs have the op
// patterns, naming and layouts of real torch.onnx exports, for tests and benchmarks that need a
// CLIP export of a given style, size and opset without downloading one.
//
// Three styles are known:
//
//   - "hf": HuggingFace transformers' CLIPModel as optimum exports it (scoped node names such as
//     /vision_model/encoder/layers.1/self_attn/q_proj/MatMul, Linear weights as anonymous
//     transposed initializers onnx::MatMul_NNN, decomposed LayerNorm below opset 17, the
//     Shape/Gather/Concat/Reshape chains torch emits for view and expand, the causal and
//     attention masks, end-of-text pooling by Equal/Cast/ArgMax and a flattened Gather).
//   - "openai": the openai/CLIP model code (visual.conv1, visual.transformer.resblocks.N,
//     nn.MultiheadAttention with its packed in-projection split into q/k/v slices, the out
//     projection as Gemm, sequence-first layout inside the transformer, a constant causal mask,
//     pooling by ArgMax over the token ids, logit scale as Exp of an initializer).
//   - "openclip": the same module names as "openai"; its default activation is erf GELU.
//
// A split export (Config.Split) follows transformers.js: text_model.onnx (input_ids only) and
// vision_model.onnx (pixel_values), each tower with its projection, whose outputs text_embeds
// and image_embeds are not normalised.
//
// WriteTokenizer writes a small byte-level BPE tokenizer.json whose vocabulary makes given
// words one token each; WriteDemo writes a tiny model with such a tokenizer, the model of
// 'skipgraph demo' and of the tests that train end to end.
//
// Build returns the models in memory with a Truth: what the generator knows it wrote (towers,
// layer counts, widths, the residual-stream values at every layer boundary, and for every
// parameter its initializer, layout and row slice). Tests of structure discovery compare what
// they find against the Truth. Write saves the models with graph/onnxio.
//
// Weights are lazy tensors generated from the seed and the parameter's name on first use, so
// building even a ViT-L/14 costs no memory until the weights are read.
package synth
