#!/usr/bin/python3
"""Writes model.onnx and reference.json beside this file: a tiny CLIP laid out like
HuggingFace's CLIPModel (same module names, same forward), with random weights, exported by
torch.onnx.export at opset 14 with constant folding, and the loss, gradients and SGD steps that
PyTorch computes for it under full fine-tuning, LSkip and LSkip + CSkip.

Run with Debian's python3-torch and python3-onnx:  /usr/bin/python3 testdata/clip-hf-tiny/gen.py
"""
import copy
import json
import math
import os
import sys

import onnx
import onnx.numpy_helper
import torch
from torch import nn

SEED = 0
SIZE = dict(img=32, patch=8, v_width=32, v_layers=2, v_heads=2, vocab=64, ctx=8,
            t_width=32, t_layers=2, t_heads=2, embed=16)
EOT = SIZE["vocab"] - 1
OPSET = 14
LR, MOMENTUM, WEIGHT_DECAY, STEPS = 0.05, 0.9, 5e-4, 2
LSKIP_START = 1
CSKIP_RATIO, CSKIP_MAX = 0.5, 50
IMAGES, CLASSES = 4, 5
MLP_RATIO = 2  # intermediate size of the MLPs over the width
LABELS = [2, 2, 4, 4]


class Attention(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.embed_dim, self.num_heads = width, heads
        self.head_dim = width // heads
        self.scale = self.head_dim ** -0.5
        self.k_proj = nn.Linear(width, width)
        self.v_proj = nn.Linear(width, width)
        self.q_proj = nn.Linear(width, width)
        self.out_proj = nn.Linear(width, width)

    def _shape(self, x, seq_len, bsz):
        return x.view(bsz, seq_len, self.num_heads, self.head_dim).transpose(1, 2).contiguous()

    def forward(self, hidden, attention_mask=None, causal_mask=None):
        bsz, tgt_len, width = hidden.size()
        query = self.q_proj(hidden) * self.scale
        key = self._shape(self.k_proj(hidden), -1, bsz)
        value = self._shape(self.v_proj(hidden), -1, bsz)
        proj_shape = (bsz * self.num_heads, -1, self.head_dim)
        query = self._shape(query, tgt_len, bsz).view(*proj_shape)
        key = key.view(*proj_shape)
        value = value.view(*proj_shape)
        src_len = tgt_len  # self-attention: keys and queries are the same positions
        weights = torch.bmm(query, key.transpose(1, 2))
        if causal_mask is not None:
            weights = weights.view(bsz, self.num_heads, tgt_len, src_len) + causal_mask
            weights = weights.view(bsz * self.num_heads, tgt_len, src_len)
        if attention_mask is not None:
            weights = weights.view(bsz, self.num_heads, tgt_len, src_len) + attention_mask
            weights = weights.view(bsz * self.num_heads, tgt_len, src_len)
        weights = nn.functional.softmax(weights, dim=-1)
        out = torch.bmm(weights, value)
        out = out.view(bsz, self.num_heads, tgt_len, self.head_dim).transpose(1, 2)
        out = out.reshape(bsz, tgt_len, width)
        return self.out_proj(out)


class MLP(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.fc1 = nn.Linear(width, MLP_RATIO * width)
        self.fc2 = nn.Linear(MLP_RATIO * width, width)

    def forward(self, x):
        x = self.fc1(x)
        x = x * torch.sigmoid(1.702 * x)  # quick_gelu
        return self.fc2(x)


class EncoderLayer(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.self_attn = Attention(width, heads)
        self.layer_norm1 = nn.LayerNorm(width)
        self.mlp = MLP(width)
        self.layer_norm2 = nn.LayerNorm(width)

    def forward(self, hidden, attention_mask, causal_mask):
        residual = hidden
        hidden = self.layer_norm1(hidden)
        hidden = self.self_attn(hidden, attention_mask, causal_mask)
        hidden = residual + hidden
        residual = hidden
        hidden = self.layer_norm2(hidden)
        hidden = self.mlp(hidden)
        return residual + hidden


class Encoder(nn.Module):
    def __init__(self, width, heads, n):
        super().__init__()
        self.layers = nn.ModuleList([EncoderLayer(width, heads) for _ in range(n)])
        # stop_at: the layer at whose input the gradient is stopped (LSkip), or None.
        self.stop_at = None

    def forward(self, hidden, attention_mask=None, causal_mask=None):
        for i, layer in enumerate(self.layers):
            if self.stop_at == i:
                hidden = hidden.detach()
            hidden = layer(hidden, attention_mask, causal_mask)
        return hidden


class VisionEmbeddings(nn.Module):
    def __init__(self, s):
        super().__init__()
        w = s["v_width"]
        self.class_embedding = nn.Parameter(torch.randn(w))
        self.patch_embedding = nn.Conv2d(3, w, kernel_size=s["patch"], stride=s["patch"], bias=False)
        self.num_positions = (s["img"] // s["patch"]) ** 2 + 1
        self.position_embedding = nn.Embedding(self.num_positions, w)
        self.register_buffer("position_ids", torch.arange(self.num_positions).expand((1, -1)), persistent=False)

    def forward(self, pixel_values):
        batch = pixel_values.shape[0]
        patches = self.patch_embedding(pixel_values).flatten(2).transpose(1, 2)
        cls = self.class_embedding.expand(batch, 1, -1)
        emb = torch.cat([cls, patches], dim=1)
        return emb + self.position_embedding(self.position_ids)


class TextEmbeddings(nn.Module):
    def __init__(self, s):
        super().__init__()
        w = s["t_width"]
        self.token_embedding = nn.Embedding(s["vocab"], w)
        self.position_embedding = nn.Embedding(s["ctx"], w)
        self.register_buffer("position_ids", torch.arange(s["ctx"]).expand((1, -1)), persistent=False)

    def forward(self, input_ids, seq):
        tokens = self.token_embedding(input_ids)
        position_ids = self.position_ids[:, :seq]
        return tokens + self.position_embedding(position_ids)


class VisionTransformer(nn.Module):
    def __init__(self, s):
        super().__init__()
        w = s["v_width"]
        self.embeddings = VisionEmbeddings(s)
        self.pre_layrnorm = nn.LayerNorm(w)
        self.encoder = Encoder(w, s["v_heads"], s["v_layers"])
        self.post_layernorm = nn.LayerNorm(w)

    def forward(self, pixel_values):
        hidden = self.pre_layrnorm(self.embeddings(pixel_values))
        hidden = self.encoder(hidden)
        return self.post_layernorm(hidden[:, 0, :])


def padding_mask(mask, dtype, bsz, seq):
    """[bsz, 1, seq, seq]: 0 where a key position is a token, the dtype's minimum at padding."""
    inverted = 1.0 - mask[:, None, None, :].to(dtype)
    return inverted.expand(bsz, 1, seq, seq) * torch.finfo(dtype).min


def causal_mask(dtype, bsz, seq):
    """[bsz, 1, seq, seq]: the dtype's minimum above the diagonal (later positions), else 0."""
    mask = torch.full((seq, seq), torch.finfo(dtype).min, dtype=dtype).triu(1)
    return mask[None, None, :, :].expand(bsz, 1, seq, seq)


class TextTransformer(nn.Module):
    def __init__(self, s):
        super().__init__()
        w = s["t_width"]
        self.embeddings = TextEmbeddings(s)
        self.encoder = Encoder(w, s["t_heads"], s["t_layers"])
        self.final_layer_norm = nn.LayerNorm(w)
        self.eos_token_id = EOT

    def forward(self, input_ids, attention_mask):
        bsz, seq = input_ids.size(0), input_ids.size(1)
        hidden = self.embeddings(input_ids, seq)
        causal = causal_mask(hidden.dtype, bsz, seq)
        mask = padding_mask(attention_mask, hidden.dtype, bsz, seq)
        hidden = self.encoder(hidden, mask, causal)
        hidden = self.final_layer_norm(hidden)
        # pooled output: the hidden state at the first end-of-text token of each sequence
        eot = (input_ids.to(dtype=torch.int) == self.eos_token_id).int().argmax(dim=-1)
        return hidden[torch.arange(bsz), eot]


class CLIPModel(nn.Module):
    def __init__(self, s):
        super().__init__()
        self.text_model = TextTransformer(s)
        self.vision_model = VisionTransformer(s)
        self.visual_projection = nn.Linear(s["v_width"], s["embed"], bias=False)
        self.text_projection = nn.Linear(s["t_width"], s["embed"], bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def forward(self, input_ids, pixel_values, attention_mask):
        image = self.visual_projection(self.vision_model(pixel_values))
        text = self.text_projection(self.text_model(input_ids, attention_mask))
        image = image / image.norm(p=2, dim=-1, keepdim=True)
        text = text / text.norm(p=2, dim=-1, keepdim=True)
        logits_per_text = torch.matmul(text, image.t()) * self.logit_scale.exp()
        return logits_per_text.t(), logits_per_text, text, image


def randomise(model):
    """Random weights away from the identity so that every parameter matters."""
    g = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name == "logit_scale":
                continue
            if "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g))
            elif name.endswith("bias") or "norm" in name:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            elif p.dim() == 2 and "embedding" not in name:
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p.shape[1]))
            elif "patch_embedding" in name:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(fan_in))
            else:
                p.copy_(0.5 * torch.randn(p.shape, generator=g))


def make_inputs():
    g = torch.Generator().manual_seed(SEED + 1)
    ctx = SIZE["ctx"]
    ids = torch.zeros(CLASSES, ctx, dtype=torch.int64)
    mask = torch.zeros(CLASSES, ctx, dtype=torch.int64)
    for c in range(CLASSES):
        n = 2 + c  # tokens before the end-of-text token: 2 .. 6
        ids[c, :n] = torch.randint(1, EOT, (n,), generator=g)
        ids[c, n] = EOT
        mask[c, :n + 1] = 1
    pixels = torch.randn(IMAGES, 3, SIZE["img"], SIZE["img"], generator=g)
    return ids, pixels, mask


def tensor(x):
    x = x.detach().contiguous()
    dtype = {torch.float32: "float32", torch.int64: "int64"}[x.dtype]
    return {"shape": list(x.shape), "dtype": dtype, "data": x.reshape(-1).tolist()}


def initializer_map(model_path, model):
    """Which torch parameter each ONNX initializer holds, and whether transposed."""
    params = dict(model.named_parameters())
    out = {}
    for init in onnx.load(model_path).graph.initializer:
        arr = torch.from_numpy(onnx.numpy_helper.to_array(init).copy())
        if init.name in params:
            out[init.name] = {"torch": init.name, "transposed": False}
            continue
        hits = [n for n, p in params.items()
                if p.dim() == 2 and tuple(p.shape[::-1]) == tuple(arr.shape) and torch.equal(p.detach().t(), arr)]
        if len(hits) != 1:
            sys.exit(f"gen.py: initializer {init.name} matches {hits or 'no parameter'}; "
                     "the export no longer looks like a HuggingFace one")
        out[init.name] = {"torch": hits[0], "transposed": True}
    return out


def onnx_layout(inits, values):
    """Torch-keyed tensors to ONNX-initializer-keyed tensors in the ONNX layout."""
    out = {}
    for name, m in inits.items():
        if m["torch"] in values:
            v = values[m["torch"]]
            out[name] = tensor(v.t() if m["transposed"] else v)
    return out


def trainable(name, start):
    if name == "logit_scale":
        return False
    if start == 0:
        return True
    for tower in ("vision_model", "text_model"):
        if name.startswith(tower + ".embeddings.") or name.startswith(tower + ".pre_layrnorm."):
            return False
        for i in range(start):
            if name.startswith(f"{tower}.encoder.layers.{i}."):
                return False
    return True


def run_case(base, inits, ids, pixels, mask, labels, start, classes=None):
    model = copy.deepcopy(base)
    model.train()
    model.text_model.encoder.stop_at = start if start > 0 else None
    model.vision_model.encoder.stop_at = start if start > 0 else None
    names = sorted(n for n, _ in model.named_parameters() if trainable(n, start))
    for n, p in model.named_parameters():
        p.requires_grad_(n in names)
    params = dict(model.named_parameters())
    if classes is not None:
        pos = {c: i for i, c in enumerate(classes)}
        labels = torch.tensor([pos[int(l)] for l in labels], dtype=torch.int64)
        ids, mask = ids[classes], mask[classes]

    def loss_fn():
        return nn.functional.cross_entropy(model(ids, pixels, mask)[0], labels)

    loss = loss_fn()
    grads = torch.autograd.grad(loss, [params[n] for n in names])
    case = {
        "lskip_start_layer": start,
        "classes": classes,
        "labels": tensor(labels),
        "loss": loss.item(),
        "trainable_torch_params": names,
        "grads": onnx_layout(inits, dict(zip(names, grads))),
    }
    opt = torch.optim.SGD([params[n] for n in names], lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    losses = []
    for _ in range(STEPS):
        opt.zero_grad()
        loss = loss_fn()
        losses.append(loss.item())
        loss.backward()
        opt.step()
    case["sgd"] = {"lr": LR, "momentum": MOMENTUM, "weight_decay": WEIGHT_DECAY, "steps": STEPS,
                   "losses": losses,
                   "params_after": onnx_layout(inits, {n: params[n] for n in names})}
    return case


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    torch.manual_seed(SEED)
    model = CLIPModel(SIZE)
    randomise(model)
    model.eval()
    ids, pixels, mask = make_inputs()
    labels = torch.tensor(LABELS, dtype=torch.int64)

    onnx_path = os.path.join(here, "model.onnx")
    tmp = onnx_path + ".tmp"
    torch.onnx.export(
        model, (ids, pixels, mask), tmp, opset_version=OPSET, do_constant_folding=True,
        input_names=["input_ids", "pixel_values", "attention_mask"],
        output_names=["logits_per_image", "logits_per_text", "text_embeds", "image_embeds"],
        dynamic_axes={
            "input_ids": {0: "text_batch_size", 1: "sequence_length"},
            "pixel_values": {0: "image_batch_size"},
            "attention_mask": {0: "text_batch_size", 1: "sequence_length"},
            "logits_per_image": {0: "image_batch_size", 1: "text_batch_size"},
            "logits_per_text": {0: "text_batch_size", 1: "image_batch_size"},
            "text_embeds": {0: "text_batch_size"},
            "image_embeds": {0: "image_batch_size"},
        })
    onnx.checker.check_model(onnx.load(tmp))
    inits = initializer_map(tmp, model)

    with torch.no_grad():
        outs = model(ids, pixels, mask)
    ref = {
        "arch": "hf", "opset": OPSET, "size": SIZE, "seed": SEED,
        "inputs": {"input_ids": tensor(ids), "pixel_values": tensor(pixels), "attention_mask": tensor(mask)},
        "labels": tensor(labels),
        "outputs": {n: tensor(o) for n, o in zip(
            ["logits_per_image", "logits_per_text", "text_embeds", "image_embeds"], outs)},
        "initializers": inits,
        "cases": {},
    }
    ref["cases"]["full_ft"] = run_case(model, inits, ids, pixels, mask, labels, 0)
    ref["cases"]["lskip"] = run_case(model, inits, ids, pixels, mask, labels, LSKIP_START)

    # CSkip: score each class by its largest similarity over the batch between the image
    # features and the zero-shot prototypes, the ground-truth classes forced to the top; keep
    # the top K = min(ceil(ratio * C), max).
    with torch.no_grad():
        _, _, protos, image = model(ids, pixels, mask)
    scores = (image @ protos.t()).max(dim=0).values
    scores[labels] = math.inf
    k = min(math.ceil(CSKIP_RATIO * CLASSES), CSKIP_MAX)
    classes = sorted(scores.topk(k).indices.tolist())
    if len(classes) >= CLASSES:
        sys.exit("gen.py: CSkip keeps every class; change LABELS or the seed")
    c = run_case(model, inits, ids, pixels, mask, labels, LSKIP_START, classes)
    c["cskip"] = {"top_ratio": CSKIP_RATIO, "max_top": CSKIP_MAX, "tail": "none", "prototypes": tensor(protos)}
    ref["cases"]["lskip_cskip"] = c

    ref_path = os.path.join(here, "reference.json")
    with open(ref_path + ".tmp", "w") as f:
        json.dump(ref, f)
    os.replace(tmp, onnx_path)
    os.replace(ref_path + ".tmp", ref_path)
    print(f"wrote {onnx_path} and {ref_path}: classes {classes}, losses "
          + ", ".join(f"{n} {ref['cases'][n]['loss']:.4f}" for n in ref["cases"]))


if __name__ == "__main__":
    main()
