// Package cost estimates what one training step of a CLIP export costs under a set of skip
// strategies: trainable parameters, optimizer state, FLOPs, the activation memory a reverse-mode
// pass keeps, and the once-only cost of the cached prefix. Everything is derived from the
// discovered structure (clip.Structure: widths, heads, MLP width, sequence lengths, layer counts,
// the patch embedding's kernel, the projections) and from a merged strategy.Plan (frozen and
// trained initializers, stop-gradient boundaries, CSkip's class-gather pass), so plugin
// strategies are costed like the built-ins.
//
// # What runs in a step
//
// Per tower, the cached boundary omega (a stop-gradient boundary with Cache set, as LSkip plans)
// is the first layer that runs per step; the embeddings and layers 0..omega-1 run once for the
// cache and not per step. Without a cached boundary the whole tower runs. A stop-gradient
// boundary without a cache still runs its prefix forward in every step but nothing below it is
// differentiated. The vision tower runs on R = B images. The text tower runs on R = C class
// prompts, or with CSkip on R = K + T classes, K = min(ceil(ratio*C), max) and T the expected
// tail size, the sum of the tail keep probabilities (classsel.Config).
//
// # Notation
//
// Per tower: R sequences, S tokens per sequence (Tower.SeqLen, or Tower.Positions for a dynamic
// text length), N = R*S tokens, D the width, H heads of HeadDim, A = H*HeadDim the attention
// width, M the MLP width, L layers. E is the joint embedding width (the projection's output).
// P is the number of image patches (S-1 with a class token) and k = Cin*kh*kw the patch
// kernel's size. FLOPs count a multiply-add as 2.
//
// # Forward FLOPs (MatMul, Gemm and Conv only)
//
//	patch embedding        2*R*P*k*D
//	layer                  2*N*(3*D*A + A*D + 2*D*M) + 4*R*S^2*A
//	                         (q, k, v, out, fc1, fc2, then scores Q*K^T and probabilities*V)
//	projection             2*R*D*E
//	logits                 2*B*R_text*E
//	CSkip scores           2*B*C*E (all classes, forward only)
//
// With A = D this is the familiar 2*N*(4*D^2 + 2*D*M) + 4*R*S^2*D per layer. The q, k, v, out,
// fc1 and fc2 terms use each projection's own in and out features as discovered. Token-embedding
// lookups, LayerNorms, softmax, activations, residual adds and the loss are elementwise and are
// not counted (about 1-3% of the total at ViT-B scale).
//
// # Backward FLOPs
//
// Walking each tower forward, a flag g says whether the value at hand depends on a trainable
// parameter (so its gradient is needed). It starts false at a stop-gradient boundary (and at the
// images and token ids) and turns true after the first trainable parameter. Then, per matmul of
// forward cost F:
//
//	projection Y = X*W     dW = X^T*dY costs F when W trains; dX = dY*W^T costs F when g at X
//	Q*K^T and P*V          2*F (gradients of both operands) when g after q, k, v
//	patch Conv             F for dW when the patch weight trains; never dX (pixels)
//	logits                 F for each side (image, text) whose features need a gradient
//
// So a trainable layer costs 3x its forward, a frozen layer above the boundary about 2x (dX
// only), and the first trained layer above the cache still costs 3x, because its first
// LayerNorm trains and needs d(LayerNorm output).
//
// # Activation memory
//
// What a reverse-mode pass must keep for its backward, per layer at or above the boundary (and
// nothing for the cached prefix), in elements (bytes = elements * the tower's weight element
// size):
//
//	LayerNorm (x2)          N*D input + 2*N statistics, when its backward runs
//	LayerNorm output (x2)   N*D, when a projection reading it trains (dW needs its input)
//	q, k, v                 3*N*A, when g after q, k, v
//	attention probabilities R*H*S^2, likewise
//	attention context       N*A, when the out projection trains
//	MLP hidden              N*M before the activation (when g after fc1) and N*M after it (when
//	                        fc2 trains)
//
// A fully trainable layer keeps 4*N*D + 4*N*A + 2*N*M + 4*N + R*H*S^2 elements. Embeddings keep
// the pixels (R*P*k) when the patch weight trains and the pre-norm's N*D + 2*N when it runs a
// backward; the post-norm keeps its input (R*D when it follows the pooling, as in the vision
// tower, N*D when it precedes it); a projection keeps its input R*D when it trains; the head
// keeps the features of both sides and the B*R_text probabilities. This is a lower bound of what
// a generated backward graph keeps: one built from standard ops may also keep intermediate
// values of decomposed activations or norms.
//
// # Parameters and optimizer state
//
// Trainable parameters are counted once per initializer (a packed in-projection is one
// initializer) and held as float32 masters: 4 bytes each. Optimizer state is 4 bytes per
// trainable parameter per state slot: SGD with momentum 1, AdamW 2, SGD without momentum 0.
//
// # Cached prefix
//
// The prefix's forward FLOPs are given per item (one image, one class prompt): the embedding
// and layers 0..omega-1 at R = 1. The text prefix runs once for all C classes; the image prefix
// once per image per epoch under augmentation (once in all without it).
package cost
