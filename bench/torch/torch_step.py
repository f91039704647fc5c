#!/usr/bin/python3
"""PyTorch eager (CPU, or CUDA with --device cuda) counterpart of skipgraph's step benchmark (bench/stepbench).

It times one Skip Tuning training step of an HF-layout CLIP in PyTorch eager mode, doing the
same work that a skipgraph bundle's train_step.onnx does, and prints one JSON line shaped like
stepbench's (median_ms, steps_ms, peak_rss_mib, features_ms, ...).

Modes
  lskip-cskip (default)  LSkip start layer omega (--omega, default half the layers) and CSkip.
      Frozen: embeddings, pre-LayerNorm, layers 0..omega-1 of both towers, logit scale. The frozen
      prefix runs once without gradients (the "features" phase, timed apart like features.onnx)
      and its output, the residual stream entering layer omega, is cached. Then the prefix is
      freed and each timed step starts from the cached states:
        vision layers omega.. -> post-LayerNorm -> projection -> normalise;
        CSkip selection without gradients: score of a class = its largest cosine similarity over
        the batch between the current normalised image features and fixed prototypes, ground
        truth forced in (1e4); keep the top K = min(ceil(ratio*C), max) rank positions plus the
        tail positions (--cskip-tail), sorted ascending; gather the cached text states, ids and
        masks of those classes; remap the labels to positions;
        text layers omega.. over the K' kept classes (full context) -> final LayerNorm -> EOS
        pooling -> projection -> normalise;
        loss = cross-entropy(exp(logit_scale) * cos(image, text));
        backward; SGD (momentum 0.9, weight decay 5e-4; LR text 2e-5, vision 5e-6).
  full  full fine-tuning: every parameter but the logit scale trains, each step runs both towers
      from pixels and token ids over all C classes (no cache, no class selection).

Data is random, like stepbench's: images N(0,1), prompts with random tokens, an end-of-text token
at position 2 + c % 14 and padding after it, random labels, random prototypes.

The model classes come from the shared reference tool clipref.py (HFCLIP and SIZES), imported at
run time from --clipref (default: ../shared/tools beside the repository).

--check runs a correctness check instead of a benchmark: on a small size it compares the loss and
every gradient of this script's cached-state step with clipref's own forward (skip=omega,
classes=the same selection) on the same weights and inputs.

Run with Debian's /usr/bin/python3 (python3-torch, python3-numpy). Install libopenblas0-pthread,
otherwise Debian's torch falls back to the reference BLAS; the JSON reports what torch was built
with (torch.__config__.show()) and which BLAS library the process loaded.
"""
import argparse
import contextlib
import gc
import json
import math
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CLIPREF = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "tools"))


def parse_args(argv=None):
    ap = argparse.ArgumentParser(
        description="Time one Skip Tuning (LSkip+CSkip) or full fine-tuning step of an HF CLIP in PyTorch eager on CPU.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        epilog="example: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 torch_step.py "
        "--size vit-b-16 --batch 4 --classes 100 --omega 6 --steps 5 --threads 2")
    ap.add_argument("--mode", choices=["lskip-cskip", "full"], default="lskip-cskip", help="what trains, see the module doc")
    ap.add_argument("--size", default="vit-b-16", help="clipref.SIZES key (vit-b-16, tiny, wide) or vit-b-32")
    ap.add_argument("--batch", type=int, default=4, help="images per step")
    ap.add_argument("--classes", type=int, default=100, help="number of classes C")
    ap.add_argument("--omega", type=int, default=-1, help="LSkip start layer (-1: half of the layers)")
    ap.add_argument("--cskip-ratio", type=float, default=0.5, help="CSkip ratio (K = min(ceil(ratio*C), max))")
    ap.add_argument("--cskip-max", type=int, default=50, help="CSkip max_top")
    ap.add_argument("--cskip-tail", default="50,51",
                    help="comma-separated rank positions beyond K that are also kept ('' for none); the default is what "
                    "skipgraph's cskip draws once for C=100, ratio 0.5, max 50, lambda 0.3, seed 0 (stepbench feeds the same)")
    ap.add_argument("--steps", type=int, default=5, help="timed steps")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                    help="where the step runs; cuda: weights and data move to the GPU after they are made on the CPU "
                         "(same seeds, same values), TF32 off unless --tf32, and peak GPU memory is reported")
    ap.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32",
                    help="with --device cuda: autocast the step's forward to bf16 or fp16 (float32 master weights; "
                         "fp16 with torch.cuda.amp.GradScaler), as skipgraph convert --precision")
    ap.add_argument("--tf32", action="store_true", help="with --device cuda: allow TF32 matrix products and convolutions")
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads (torch.set_num_threads)")
    ap.add_argument("--seed", type=int, default=1, help="seed of weights and data")
    ap.add_argument("--clipref", default=DEFAULT_CLIPREF, help="folder holding clipref.py")
    ap.add_argument("--check", action="store_true", help="compare this step's loss and gradients with clipref's forward, then exit")
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="after the timed steps, profile one more step with torch's autograd profiler and print the N "
                    "ops with the most self CPU time to stderr")
    return ap.parse_args(argv)


def rss_mib(key):
    """VmHWM (peak) or VmRSS (current) of this process in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def reset_peak_rss():
    """Reset VmHWM to the current RSS (Linux >= 4.0); False when the kernel refuses."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def loaded_blas():
    """BLAS/LAPACK shared libraries mapped into this process."""
    libs = set()
    with open("/proc/self/maps") as f:
        for line in f:
            p = line.split()[-1]
            b = os.path.basename(p)
            if any(k in b for k in ("blas", "lapack", "mkl", "dnnl")):
                libs.add(os.path.realpath(p))
    return sorted(libs)


# sizes beyond clipref.SIZES, each derived from one of them: ViT-B/32 is ViT-B/16 with 32-pixel
# patches (49 patches + the class token), as skipgraph synth --size vit-b-32 makes it.
EXTRA_SIZES = {"vit-b-32": lambda sizes: {**sizes["vit-b-16"], "patch": 32}}


class Setup:
    """Weights, random data and the parameter split for one run."""

    def __init__(s, a, torch, clipref):
        s.torch = torch
        c = dict(clipref.SIZES[a.size]) if a.size in clipref.SIZES else dict(EXTRA_SIZES[a.size](clipref.SIZES))
        s.cfg = c
        torch.manual_seed(a.seed)
        s.m = clipref.HFCLIP(c)
        s.m.train()
        s.layers = c["v_layers"]
        if c["t_layers"] != s.layers:
            raise SystemExit("towers with different depths: not supported by this script")
        s.omega = a.omega if a.omega >= 0 else s.layers // 2
        g = torch.Generator().manual_seed(a.seed + 1)
        B, C, T = a.batch, a.classes, c["ctx"]
        s.eos = c["vocab"] - 1
        s.px = torch.randn(B, 3, c["img"], c["img"], generator=g)
        s.ids = torch.zeros(C, T, dtype=torch.int64)
        s.mask = torch.zeros(C, T, dtype=torch.int64)
        for i in range(C):
            end = 2 + i % (min(T, 16) - 2)
            s.ids[i, : end] = torch.randint(1, s.eos - 1, (end,), generator=g)
            s.ids[i, end] = s.eos
            s.mask[i, : end + 1] = 1
        s.labels = torch.randint(0, C, (B,), generator=g)
        p = torch.randn(C, c["embed"], generator=g)
        s.protos = p / p.norm(dim=-1, keepdim=True)
        s.K = max(1, min(math.ceil(a.cskip_ratio * C - 1e-9), a.cskip_max, C))
        s.tail = [int(x) for x in a.cskip_tail.split(",") if x.strip() != ""]
        if any(t < s.K or t >= C for t in s.tail):
            raise SystemExit(f"--cskip-tail positions must lie in [K={s.K}, C={C}): {s.tail}")
        s.tail_t = torch.tensor(s.tail, dtype=torch.int64)

    def to(s, dev):
        """Moves the model and the data to dev."""
        s.m.to(dev)
        for k in ("px", "ids", "mask", "labels", "protos", "tail_t"):
            setattr(s, k, getattr(s, k).to(dev))

    def frozen(s, name, mode):
        """True when the parameter does not train (the paper's LSkip split; full FT freezes only the logit scale)."""
        if name.endswith("logit_scale"):
            return True
        if mode == "full":
            return False
        if ".embeddings." in name or "pre_layrnorm" in name:
            return True
        key = ".encoder.layers."
        return key in name and int(name.split(key)[1].split(".")[0]) < s.omega

    def trainable(s, mode):
        return [(n, p) for n, p in s.m.named_parameters() if not s.frozen(n, mode)]


def text_masks(torch, ids, mask, dtype):
    """HF CLIP's additive causal and padding masks for a [C, T] batch of prompts."""
    b, t = ids.shape
    lo = torch.finfo(dtype).min
    cm = torch.full((t, t), lo, dtype=dtype, device=ids.device).triu(1)[None, None].expand(b, 1, t, t)
    am = (1.0 - mask[:, None, None, :].to(dtype)).expand(b, 1, t, t) * lo
    return am, cm


def prefix_states(s):
    """The frozen prefix without gradients: residual streams entering layer omega of each tower."""
    torch, m = s.torch, s.m
    with torch.no_grad():
        v = m.vision_model
        x = v.pre_layrnorm(v.embeddings(s.px))
        for layer in v.encoder.layers[: s.omega]:
            x = layer(x)
        sv = x.contiguous()
        t = m.text_model
        y = t.embeddings(s.ids)
        am, cm = text_masks(torch, s.ids, s.mask, y.dtype)
        for layer in t.encoder.layers[: s.omega]:
            y = layer(y, am, cm)
        st = y.contiguous()
    return sv, st


def select_classes(s, img_n):
    """CSkip: kept class ids (ascending) from the current normalised image features."""
    torch = s.torch
    with torch.no_grad():
        sim = img_n.detach() @ s.protos.t()
        sim[torch.arange(sim.shape[0], device=sim.device), s.labels] = 1e4
        score = sim.max(dim=0).values
        order = torch.argsort(score, descending=True)
        kept = order[: s.K]
        if len(s.tail):
            kept = torch.cat([kept, order[s.tail_t]])
        kept, _ = torch.sort(kept)
        lab = torch.searchsorted(kept, s.labels)
    return kept, lab


def lskip_cskip_loss(s, sv, st):
    """Forward of the trainable suffix from cached states, with the CSkip class selection."""
    torch, m = s.torch, s.m
    F = torch.nn.functional
    v = m.vision_model
    x = sv
    for layer in v.encoder.layers[s.omega:]:
        x = layer(x)
    img = m.visual_projection(v.post_layernorm(x[:, 0, :]))
    img_n = img / img.norm(p=2, dim=-1, keepdim=True)
    kept, lab = select_classes(s, img_n)
    ids, mask = s.ids[kept], s.mask[kept]
    t = m.text_model
    y = st[kept]
    am, cm = text_masks(torch, ids, mask, y.dtype)
    for layer in t.encoder.layers[s.omega:]:
        y = layer(y, am, cm)
    y = t.final_layer_norm(y)
    eos = (ids == t.eos).int().argmax(dim=-1)
    txt = m.text_projection(y[torch.arange(y.shape[0], device=y.device), eos])
    txt_n = txt / txt.norm(p=2, dim=-1, keepdim=True)
    logits = (img_n @ txt_n.t()) * m.logit_scale.exp()
    return F.cross_entropy(logits, lab), kept, lab


def full_loss(s):
    """Full fine-tuning forward over all classes, from pixels and token ids."""
    F = s.torch.nn.functional
    lpi = s.m(s.ids, s.px, s.mask)[0]
    return F.cross_entropy(lpi, s.labels)


def make_optimizer(s, torch, mode):
    groups = {"text": [], "vision": []}
    for n, p in s.trainable(mode):
        groups["vision" if n.startswith("vision_model") or n.startswith("visual_projection") else "text"].append(p)
    for n, p in s.m.named_parameters():
        p.requires_grad_(not s.frozen(n, mode))
    return torch.optim.SGD([{"params": groups["text"], "lr": 2e-5}, {"params": groups["vision"], "lr": 5e-6}],
                           lr=1e-5, momentum=0.9, weight_decay=5e-4)


def free_prefix(s):
    """Drop what the cached-state step never touches again (the frozen prefix), like a bundle's train step."""
    m = s.m
    for tower in (m.vision_model, m.text_model):
        for i in range(s.omega):
            tower.encoder.layers[i] = None
    m.vision_model.embeddings = None
    m.vision_model.pre_layrnorm = None
    m.text_model.embeddings.token_embedding = None
    s.px = None
    gc.collect()
    try:  # hand the freed heap back to the kernel, so that the step phase's peak starts from what it holds
        import ctypes
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def check(a, torch, clipref):
    """Same loss and gradients as clipref's HFCLIP.forward(skip=omega, classes=kept) on the same weights and inputs."""
    s = Setup(a, torch, clipref)
    m = s.m
    torch.manual_seed(0)
    with torch.no_grad():
        for _, p in m.named_parameters():  # away from default init so that LayerNorms and biases matter
            p.add_(0.1 * torch.randn(p.shape))
    opt = make_optimizer(s, torch, "lskip-cskip")
    sv, st = prefix_states(s)
    opt.zero_grad()
    loss, kept, lab = lskip_cskip_loss(s, sv, st)
    loss.backward()
    mine = {n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None}
    opt.zero_grad()
    for p in m.parameters():  # clipref's forward needs every tensor; gradients only where trainable
        p.grad = None
    ref = torch.nn.functional.cross_entropy(m(s.ids, s.px, s.mask, skip=s.omega, classes=kept)[0], lab)
    ref.backward()
    theirs = {n: p.grad for n, p in m.named_parameters() if p.grad is not None}
    trainable = {n for n, _ in s.trainable("lskip-cskip")}
    want = {n for n, _ in m.named_parameters() if not clipref.frozen_by_lskip(n, "hf", s.omega)}
    # relative to the tensor's largest entry; k_proj.bias is left out: its true gradient is zero (softmax
    # ignores a constant shift of a query's scores), so both sides hold rounding noise there
    worst = max(float((mine[n] - theirs[n]).abs().max() / (theirs[n].abs().max() + 1e-12))
                for n in theirs if not n.endswith("k_proj.bias"))
    noise = max([float(theirs[n].abs().max()) for n in theirs if n.endswith("k_proj.bias")] or [0.0])
    res = {"size": a.size, "omega": s.omega, "K": s.K, "kept": len(kept), "loss": float(loss), "loss_clipref": float(ref),
           "grad_params": len(mine), "grad_params_clipref": len(theirs), "same_param_set": set(mine) == set(theirs) == trainable == want,
           "worst_rel_grad_diff": worst, "k_proj_bias_grad_max": noise}
    res["ok"] = res["same_param_set"] and abs(res["loss"] - res["loss_clipref"]) <= 1e-5 * max(1, abs(res["loss_clipref"])) and worst < 1e-4
    print(json.dumps(res))
    return 0 if res["ok"] else 1


def main(argv=None):
    a = parse_args(argv)
    sys.path.insert(0, a.clipref)
    try:
        import torch
        import clipref
    except ImportError as e:
        print(f"torch_step.py: {e}: install Debian's python3-torch and python3-numpy (apt-get install -y python3-torch "
              f"python3-numpy libopenblas0-pthread), run with /usr/bin/python3, and point --clipref at the folder of clipref.py",
              file=sys.stderr)
        return 2
    torch.set_num_threads(a.threads)
    if a.check:
        return check(a, torch, clipref)
    cuda = a.device == "cuda"
    if cuda and not torch.cuda.is_available():
        print("torch_step.py: --device cuda: torch sees no CUDA device (torch.cuda.is_available() is False)", file=sys.stderr)
        return 2

    t_load = time.perf_counter()
    s = Setup(a, torch, clipref)
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = a.tf32
        torch.backends.cudnn.allow_tf32 = a.tf32
        s.to("cuda")
        # tensors the model makes inside its forward (masks, index ranges) go to the GPU too
        torch.set_default_device("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    if a.precision != "fp32" and not cuda:
        print("torch_step.py: --precision needs --device cuda", file=sys.stderr)
        return 2
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(a.precision)
    autocast = (lambda: torch.autocast("cuda", dtype=amp_dtype)) if amp_dtype else contextlib.nullcontext
    scaler = torch.amp.GradScaler("cuda") if a.precision == "fp16" else None
    res = {"tool": "torch-eager", "device": a.device, "precision": a.precision, "mode": a.mode, "size": a.size, "batch": a.batch, "classes": a.classes,
           "torch": torch.__version__, "threads": torch.get_num_threads(),
           "blas_info": [f for f in torch.__config__.show().replace(",", " ").split() if f.startswith(("BLAS_INFO", "LAPACK_INFO"))],
           "setup_s": None}
    opt = make_optimizer(s, torch, a.mode)
    res["trainable_params"] = sum(p.numel() for _, p in s.trainable(a.mode))
    res["total_params"] = sum(p.numel() for p in s.m.parameters())
    if a.mode == "lskip-cskip":
        res.update(omega=s.omega, K=s.K, tail=s.tail)
        t0 = time.perf_counter()
        sv, st = prefix_states(s)
        res["features_ms"] = (time.perf_counter() - t0) * 1000
        res["feature_images_per_s"] = a.batch / (time.perf_counter() - t0)
        free_prefix(s)
        step_loss = lambda: lskip_cskip_loss(s, sv, st)[0]
    else:
        step_loss = lambda: full_loss(s)
    res["setup_s"] = time.perf_counter() - t_load
    if cuda:
        sync()
        res["gpu"] = torch.cuda.get_device_name()
        res["tf32"] = a.tf32
        res["setup_gpu_allocated_mib"] = torch.cuda.memory_allocated() / 2**20
        torch.cuda.reset_peak_memory_stats()
    res["pre_step_peak_rss_mib"] = rss_mib("VmHWM")
    res["peak_reset"] = reset_peak_rss()
    res["setup_rss_mib"] = rss_mib("VmRSS")
    times, cpu, losses = [], [], []
    kept_n = None
    for i in range(a.warmup + a.steps):
        sync()
        t0, c0 = time.perf_counter(), time.process_time()
        opt.zero_grad(set_to_none=True)
        with autocast():
            if a.mode == "lskip-cskip" and kept_n is None:
                loss, kept, _ = lskip_cskip_loss(s, sv, st)
                kept_n = len(kept)
            else:
                loss = step_loss()
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()
        lv = float(loss)
        sync()
        dt = (time.perf_counter() - t0) * 1000
        dc = (time.process_time() - c0) * 1000
        losses.append(lv)
        if i >= a.warmup:
            times.append(dt)
            cpu.append(dc)
    if a.profile:
        with torch.autograd.profiler.profile() as prof:
            opt.zero_grad(set_to_none=True)
            loss = step_loss()
            loss.backward()
            opt.step()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=a.profile), file=sys.stderr)
    srt = sorted(times)
    res.update(steps_ms=[round(t, 1) for t in times], median_ms=srt[len(srt) // 2], min_ms=srt[0],
               steps_cpu_ms=[round(t, 1) for t in cpu], losses=losses,
               blas_loaded=loaded_blas())
    if kept_n is not None:
        res["kept_classes"] = kept_n
    if cuda:
        # the caching allocator's peaks over the timed steps (the CUDA context is not included)
        res["peak_gpu_allocated_mib"] = torch.cuda.max_memory_allocated() / 2**20
        res["peak_gpu_reserved_mib"] = torch.cuda.max_memory_reserved() / 2**20
    # peak_rss_mib is the step phase's own peak, as stepbench's (whose features phase runs in a child
    # process): VmHWM was reset once the cached states were made and the prefix freed. The whole
    # process's peak (model build and features phase included) is process_peak_rss_mib.
    res["process_peak_rss_mib"] = max(res["pre_step_peak_rss_mib"], rss_mib("VmHWM"))
    res["peak_rss_mib"] = rss_mib("VmHWM") if res["peak_reset"] else res["process_peak_rss_mib"]
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
