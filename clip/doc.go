// Package clip discovers the structure of a CLIP ONNX export: its two towers (vision and text),
// their embeddings, transformer layers and the residual-stream values between them, the
// post-norms, pooling and projections, the similarity head with its logit scale, the axes that
// index classes, and the canonical torch name of every parameter.
//
// Discover works on a combined export or one file of a split export; DiscoverSplit combines the
// two files of a split export (its head is absent and the logit scale defaults to 100).
//
// Recognition is structural, so it works on graphs whose node names were removed:
//
//   - LayerNorms are matched as LayerNormalization nodes (opset 17 on) or as the decomposed
//     ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div/Mul/Add pattern, with optional Casts around it,
//     with ReduceMean axes as an attribute or (opset 18) an input.
//   - A residual sub-block is an Add of a value x and a branch computed from LayerNorm(x); the
//     branch holding a Softmax is attention, one with two projections is the MLP. An attention
//     block followed by an MLP block is a layer, and layers whose output enters the next one form
//     a tower. The tower is vision when its stream depends on the image input (through the patch
//     Conv), text when it depends on the token ids.
//   - In attention, the q, k and v projections are told apart by where they flow: q and k into
//     the score MatMul before the Softmax, v into the context MatMul after it. A single
//     projection feeding all three is a packed in-projection. The head count comes from the
//     Reshape constants that split heads (or the query scale 1/sqrt(head_dim)).
//   - Pooling is a Gather/Slice of the class token (vision) or a Gather indexed by an ArgMax of
//     the token ids, directly (OpenAI) or of (ids == eos) (HF). The head is the L2 normalisation
//     of both embeddings, their MatMul and the Mul by the logit scale.
//   - Names decide only the family (hf or openai) when initializer names say it; otherwise the
//     sequence-first layout or nn.MultiheadAttention's projections decide it.
//
// Graphs optimised by ONNX Runtime (com.microsoft fused operators) are refused with an input
// error naming the operator and node; models that are not CLIP-like are refused with an input
// error saying what was expected.
//
// Nodes are referred to by name, or as "@" and their first output's name when unnamed (NodeRef).
// The Structure's JSON form is stable: strategies, the bundle manifest and plugins use it.
package clip
