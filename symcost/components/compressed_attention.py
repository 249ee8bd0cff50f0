"""DeepSeek-V4's attention (DeepSeek-AI 2026, "DeepSeek-V4", Sec. 2.3): one shared key/value head
over a sliding window, plus — where `compress` is set — entries that compress every `compress`
tokens into one, as transformers' DeepseekV4Attention runs it:

    q:   x -> q_a_proj (dim -> q_lora_rank) -> RMSNorm -> q_b_proj (-> heads x head_dim) -> RMSNorm
         per head (no weight) -> rotary on the last rope_dim features
    kv:  x -> kv_proj (dim -> head_dim) -> RMSNorm -> rotary: one head, read as key and as value
    compressed entries (HCA, no indexer): kv_proj and gate_proj (dim -> head_dim each); each closed
         window of `compress` tokens -> sum of kv weighted by softmax(gate + position_bias) -> RMSNorm
         -> rotary at the window's first position
    CSA (with the indexer fields): kv_proj and gate_proj to 2 x head_dim, windows overlapping by one
         (each entry mixes the window before's first half and its own second half over 2 x compress
         slots); a lightning indexer (its own compressor at index_dim, queries index_heads x index_dim
         from the query latent, a weight per head from x) scores relu(q.k) for every entry and keeps
         each query's index_topk best
    attention over the window's keys and the compressed entries a query may see (a causal entry:
         its window closed at or before the query), with a learned sink logit per head; the rotation
         undone on the output's rope features; the grouped low-rank output projection: o_groups
         groups of heads·head_dim/o_groups -> o_lora_rank each (o_a_proj), then -> dim (o_b_proj).

Under pytorch (what transformers runs): every query multiplies every key it holds — the window's
keys (the whole sequence in training, the cached window − 1 and its own in a decode step) and every
compressed entry — masking the rest; the indexer scores every entry for every query. The indexer
returns indices only, so it has no backward, yet its forward runs with gradients on: what it saves
is freed when the pass ends, and the counts here include it, as saved_tensors_hooks see it. The
compressor's projections have a backward only when a window closed (else their output is unused).
Under `kernel` (the work a fused sparse kernel does: the report's Sec. 2.3 and 5.1): query p sees
min(window, p + 1) window keys and floor((p + 1)/compress) entries (HCA), at most index_topk of
them (CSA); the indexer scores the causal entries only.

A decode cache holds, a sequence: the last window − 1 keys (the key is the value: one tensor; twice in
a layer without compression, whose plain sliding-window cache in transformers keeps both), every
compressed entry (head_dim each; index_dim for the indexer's), the tokens of a window not yet
closed (their kv and gate projections, 4 x head_dim each under CSA, 2 x head_dim under HCA; 4 x
index_dim for the indexer's) and, under CSA, the last closed window's first halves (compress x
head_dim of kv and of gate, and the indexer's at index_dim) — transformers' DeepseekV4CSACache
and DeepseekV4HCACache, counted in the activation dtype.

Where the report's sizes fix what transformers leaves open, this type follows transformers: the
query heads' RMSNorm has no weight; the indexer shares the query's rope_dim. Attention always has
its sinks and is causal. A `quantization:` block leaves the compressors' and the indexer's kv, gate
and head weight projections in 16 bits, as DeepSeek-V4's FP8 checkpoints ship them. `plan` and `serve`
refuse tp > 1 (no rule for splitting one shared key/value head and grouped output projection is
modelled).
"""

from __future__ import annotations

from dataclasses import replace

import sympy
from pydantic import StrictBool

from .. import ops
from ..checks import Check
from ..cost import Cost
from ..symbols import ACT
from .attention import CONTEXT, _window_sum, above_one, least, products
from .base import Component, Ctx, Size
from .rmsnorm import rms_saved

EPS = 1e-6
# the parameters transformers keeps in fp32 in any dtype (DeepseekV4's _keep_in_fp32_modules_strict)
FP32 = ("q_a_norm", "kv_norm", "sinks", "c_bias", "c_norm", "i_bias", "i_norm")


def closed_one(W):
    """1 once an entry has closed (W >= 1), else 0: a flag, not a size that grows with the context (so the
    cache's growth a token leaves it out), unevaluated where it reads the context, as `least`."""
    fixed = CONTEXT not in sympy.sympify(W).free_symbols
    return sympy.Piecewise((0, sympy.Lt(W, 1, evaluate=fixed)), (1, True), evaluate=fixed)


def entries_seen(K, m, topk=None):
    """sum over positions p = 0..K-1 of the compressed entries query p may see: floor((p + 1)/m), at
    most topk. Whole blocks of m: q = floor(K/m), r = K - m·q gives m·q(q - 1)/2 + q(r + 1)."""
    def below(k):
        q = sympy.floor(k / m)
        return m * q * (q - 1) / 2 + q * (k - m * q + 1)
    if topk is None:
        return below(K)
    cap = m * topk - 1  # from position cap on, every query sees topk
    return below(least(K, cap)) + topk * sympy.Max(0, K - cap, evaluate=CONTEXT not in sympy.sympify(K).free_symbols)


class CompressedAttention(Component):
    kind = "compressed_attention"
    attends = "self"
    mixes_tokens = True
    dim: Size
    heads: Size
    head_dim: Size
    rope_dim: Size  # the rotated features at the end of each head (qk_rope_head_dim)
    q_lora_rank: Size
    window: Size  # sliding_window: each query sees itself and window - 1 earlier keys
    o_groups: Size
    o_lora_rank: Size
    compress: Size | None = None  # tokens a compressed entry stands for (4: CSA, 128: HCA); unset: the window only
    # the lightning indexer (CSA): all three, with compress
    index_heads: Size | None = None
    index_dim: Size | None = None
    index_topk: Size | None = None
    residual: StrictBool = True

    @property
    def indexed(self) -> bool:
        """Whether a lightning indexer chooses the entries (its three sizes and compress given; else checks
        refuses)."""
        return None not in (self.index_heads, self.index_dim, self.index_topk, self.compress)

    def compressed(self, ctx: Ctx):
        """Compressed entries held after the pass (0 without compression)."""
        if self.compress is None:
            return sympy.Integer(0)
        return sympy.floor((ctx.context + ctx.seq_len) / self.compress)

    def parts(self, ctx: Ctx):
        b, n, c, tokens, conv = ctx.batch, ctx.seq_len, ctx.context, ctx.tokens, ctx.convention
        h, hd, qr, rope, mac = self.heads, self.head_dim, self.q_lora_rank, self.rope_dim, conv.flops_per_mac
        W, K = self.compressed(ctx), c + n
        # the indexer's projections run without a backward (it returns indices only); transformers ships the
        # compressors' and the indexer's kv, gate and weight projections in 16 bits in an FP8 checkpoint: not stored
        forward_only = lambda cost: replace(cost, backward=sympy.Integer(0))
        normed = lambda rows, width: ctx.elementwise(rows * width, "rmsnorm") + ctx.elementwise(rows * width, "affine")
        parts = {
            "q_proj": ctx.linear(self.dim, qr, False) + ctx.weights(qr) + normed(tokens, qr)
            + ctx.linear(qr, h * hd, False, input_grad=True) + ctx.elementwise(tokens * h * hd, "rmsnorm"),
            "kv_proj": ctx.linear(self.dim, hd, False) + ctx.weights(hd) + normed(tokens, hd),
            "rotary": ctx.elementwise(tokens * (2 * h + 1) * rope, "rotary"),  # q, kv, and undone on the output
        }
        if conv.causal_half:  # the window's kept pairs and the entries each query may see
            seen = entries_seen(K, self.compress, self.index_topk) - entries_seen(c, self.compress, self.index_topk) \
                if self.compress is not None else 0
            entries = _window_sum(self.window, K) - _window_sum(self.window, c) + seen
        else:
            entries = n * (least(c, self.window - 1) + n + W)
        parts |= products(ctx, h, entries, hd, hd)
        parts["sinks"] = ctx.weights(h) + ctx.elementwise(b * h * n, "softmax")
        if self.compress is not None:
            m, width = self.compress, (2 if self.indexed else 1) * hd
            used = sympy.Min(1, W)  # a window closed in the pass: the projections' output is read
            project = ctx.linear(self.dim, 2 * width, False, storable=False)
            new = W - sympy.floor(c / m)  # entries this pass closes, normalised and rotated
            parts["compressor"] = (replace(project, backward=project.backward * used) + ctx.weights(m * width + hd)
                                   + normed(b * new, hd) + ctx.elementwise(b * new * rope, "rotary"))
        if self.indexed:
            ih, idim = self.index_heads, self.index_dim
            scored = (entries_seen(K, m) - entries_seen(c, m)) if conv.causal_half else n * W
            parts["indexer"] = (forward_only(ctx.linear(self.dim, 4 * idim, False, storable=False))
                                + forward_only(ctx.linear(qr, ih * idim, False))
                                + forward_only(ctx.linear(self.dim, ih, False, storable=False))
                                + ctx.weights(2 * m * idim + idim)
                                + Cost(forward=mac * b * ih * idim * scored) + ctx.elementwise(b * ih * scored, "relu"))
        grouped = h * hd * self.o_lora_rank
        parts["o_proj"] = (Cost.weights(grouped) + ops.matmul(conv, 1, tokens, h * hd, self.o_lora_rank, grad_a=True,
                                                              grad_b=True)
                           + ctx.linear(self.o_groups * self.o_lora_rank, self.dim, False, input_grad=True))
        parts["kv_cache"] = Cost(cache=b * self.held(K, W))
        if self.residual:
            parts["residual"] = ctx.elementwise(tokens * self.dim, "residual")
        return parts

    def held(self, K, W):
        """Values a sequence's cache holds after K tokens with W entries closed (see the docstring)."""
        kept = least(self.window - 1, K) * self.head_dim
        if self.compress is None:  # transformers' plain sliding layer keeps the key and the value apart
            return 2 * kept
        m, hd, open_ = self.compress, self.head_dim, K - self.compress * W
        if not self.indexed:
            return kept + W * hd + open_ * 2 * hd
        idim, closed = self.index_dim, closed_one(W)
        return kept + W * (hd + idim) + open_ * 4 * (hd + idim) + closed * 2 * m * (hd + idim)

    def saved(self, ctx: Ctx):
        """As transformers' layer keeps them in training (no context). In the activation dtype: the input;
        the query latent (q_b_proj's input); q_b_proj's output; q and the key/value as rotated, and the
        cosine and sine tables each of the three rotations keeps (batch x tokens x rope_dim each); the key
        and the value each broadcast to every head, which the matmuls copy only when batch and heads both
        exceed one (else the one tensor); under a 16-bit dtype a copy of the probabilities; the grouped
        projection's input and o_b_proj's. In fp32: the probabilities with the sink column (transformers
        keeps the sinks in fp32, so the logits are), each weighted RMSNorm's
        input (a copy under a 16-bit dtype), 1/rms and normalised values; the head norm's 1/rms (and
        under a 16-bit dtype its fp32 input and the 1/rms in the activation dtype); each row's argmax
        (int64). Compression, when a window closed: the windows' kv (HCA: the projection's output; CSA:
        the overlapping layout) and fp32 softmax of the gates (with its copy in the activation dtype
        under 16 bits), the entries' norm and rotation. The indexer (whose saves the pass frees):
        the same for its compressor; its queries' rotation; fp32 copies of its queries (when an entry
        exists) and of the entries (for each query when the batch exceeds one); relu's output and the
        scaled scores, the head weights; the causal mask over entries (bool) and the top-k indices
        (int64)."""
        b, n, h, hd, rope = ctx.batch, ctx.seq_len, self.heads, self.head_dim, self.rope_dim
        N, qr, W = ctx.batch * ctx.seq_len, self.q_lora_rank, self.compressed(ctx)
        S = n + W
        wide = sympy.Piecewise((0, sympy.Eq(ACT, 4)), (1, True))  # 1 under a 16-bit dtype
        act = N * (qr + 3 * h * hd + self.o_groups * self.o_lora_rank) + 6 * b * n * rope \
            + b * S * hd * (1 + (2 * h - 1) * above_one(b, h)) + wide * b * h * n * S
        fp32 = rms_saved(N, qr, N * qr * ACT) + rms_saved(N, hd, N * hd * ACT) + 4 * N * h \
            + wide * (4 * N * h * hd + N * h * ACT) + 8 * b * h * n + 4 * b * h * n * (S + 1)
        if self.compress is not None:
            m = self.compress
            windows = lambda width, slots: (b * W * slots * width * (ACT + 4 + wide * ACT)
                                            + rms_saved(b * W, width, b * W * width * ACT) + 2 * b * W * rope * ACT)
            if self.indexed:
                ih, idim, topk = self.index_heads, self.index_dim, self.index_topk
                copies = 4 * N * ih * idim * sympy.Min(1, W) + 4 * b * idim * W * (1 + (n - 1) * above_one(b))
                fp32 += windows(hd, 2 * m) + windows(idim, 2 * m) + 2 * N * rope * ACT + copies \
                    + 8 * N * ih * W + 4 * N * ih + N * W + 8 * N * sympy.Min(topk, W)
            else:
                fp32 += windows(hd, m) - b * W * m * hd * ACT + sympy.Min(1, W) * N * hd * ACT
        return Cost(saved=ctx.input_saved(self.dim) + act * ACT + fp32)

    def checks(self, ctx: Ctx):
        yield from super().checks(ctx)
        given = [f for f in ("index_heads", "index_dim", "index_topk") if getattr(self, f) is not None]
        if given and (len(given) < 3 or self.compress is None):
            yield Check(given[0], sympy.false, "the lightning indexer needs index_heads, index_dim and index_topk "
                        "together, with compress (it chooses among compressed entries)")
        yield Check("rope_dim", sympy.Le(self.rope_dim, self.head_dim), "rope_dim {} exceeds head_dim {}",
                    (self.rope_dim, self.head_dim))
        yield Check("rope_dim", sympy.Eq(self.rope_dim % 2, 0), "rope_dim {} is odd: the rotation pairs features",
                    (self.rope_dim,))
        yield Check("o_groups", sympy.Eq((self.heads * self.head_dim) % self.o_groups, 0),
                    "o_groups {} does not divide heads x head_dim = {}", (self.o_groups, self.heads * self.head_dim))
        if len(given) == 3:
            yield Check("index_dim", sympy.Le(self.rope_dim, self.index_dim),
                        "the indexer rotates rope_dim {} of its index_dim {} features", (self.rope_dim, self.index_dim))

    def build(self, b):
        import torch
        from torch import nn

        from .build import keep_fp32, layer_state, unweighted

        d, h, hd, rope, qr = (b.int(x) for x in (self.dim, self.heads, self.head_dim, self.rope_dim, self.q_lora_rank))
        win, g, olr = b.int(self.window), b.int(self.o_groups), b.int(self.o_lora_rank)
        m = None if self.compress is None else b.int(self.compress)
        indexed, residual = self.indexed, self.residual
        mods = {"q_a_proj": nn.Linear(d, qr, bias=False), "q_b_proj": nn.Linear(qr, h * hd, bias=False),
                "kv_proj": nn.Linear(d, hd, bias=False), "o_b_proj": nn.Linear(g * olr, d, bias=False)}
        if m is not None:
            width = (2 if indexed else 1) * hd
            mods |= {"c_kv_proj": nn.Linear(d, width, bias=False), "c_gate_proj": nn.Linear(d, width, bias=False)}
        if indexed:
            ih, idim, topk = b.int(self.index_heads), b.int(self.index_dim), b.int(self.index_topk)
            mods |= {"i_kv_proj": nn.Linear(d, 2 * idim, bias=False), "i_gate_proj": nn.Linear(d, 2 * idim, bias=False),
                     "i_q_b_proj": nn.Linear(qr, ih * idim, bias=False), "i_weights_proj": nn.Linear(d, ih, bias=False)}
        inv_freq = 1.0 / (10000.0 ** (torch.arange(0, rope, 2, dtype=torch.float) / rope))

        def norm(weight, t):  # transformers' DeepseekV4RMSNorm, op for op
            dtype, t = t.dtype, t.to(torch.float32)
            t = t * torch.rsqrt(t.pow(2).mean(-1, keepdim=True) + EPS)
            return (weight * t).to(dtype)

        def tables(positions, like):  # (B, T) positions -> cos, sin (B, T, rope / 2) in like's dtype
            freqs = positions[..., None].float() * inv_freq.to(positions.device)
            return freqs.cos().to(like.dtype), freqs.sin().to(like.dtype)

        def rotate(t, cos, sin):  # the interleaved rotation of t's last rope features; t: (B, ·, T, D)
            cos, sin = cos.repeat_interleave(2, dim=-1).unsqueeze(1), sin.repeat_interleave(2, dim=-1).unsqueeze(1)
            keep, part = t[..., :-rope], t[..., -rope:]
            turned = torch.stack((-part[..., 1::2], part[..., 0::2]), dim=-1).flatten(-2)
            return torch.cat([keep, ((part.float() * cos) + (turned.float() * sin)).to(t.dtype)], dim=-1)

        def compressor(x, cache, name, kv_proj, gate_proj, bias, weight, size, overlap):
            """Every window closed in this pass compressed to one entry (B, new, size); the entries so far."""
            B = x.shape[0]
            kv, gate = kv_proj(x), gate_proj(x)
            start = 0
            if cache is not None:  # the open window's tokens wait in the cache
                buffered = cache.get(name + "_buffer")
                if buffered is not None:
                    kv, gate = torch.cat([buffered[0], kv], dim=1), torch.cat([buffered[1], gate], dim=1)
                start = cache.get(name + "_count", 0) * m
            usable = kv.shape[1] // m * m
            if cache is not None:
                cache[name + "_buffer"] = (kv[:, usable:], gate[:, usable:])
            kv, gate = kv[:, :usable], gate[:, :usable]
            if usable:
                w = usable // m
                kv, gate = kv.view(B, w, m, -1), gate.view(B, w, m, -1) + bias
                if overlap:  # the window before's first half beside this one's second half
                    laid = kv.new_zeros((B, w, 2 * m, size))
                    gates = gate.new_full((B, w, 2 * m, size), float("-inf"))
                    laid[:, :, m:], gates[:, :, m:] = kv[..., size:], gate[..., size:]
                    if w > 1:
                        laid[:, 1:, :m], gates[:, 1:, :m] = kv[:, :-1, :, :size], gate[:, :-1, :, :size]
                    if cache is not None:
                        prior = cache.get(name + "_overlap")
                        cache[name + "_overlap"] = (kv[:, -1, :, :size].clone(), gate[:, -1, :, :size].clone())
                        if prior is not None:
                            laid[:, 0, :m], gates[:, 0, :m] = prior[0], prior[1]
                    kv, gate = laid, gates
                new = norm(weight, (kv * gate.softmax(dim=2, dtype=torch.float32).to(kv.dtype)).sum(dim=2))
                positions = (torch.arange(w, device=x.device) * m + start).unsqueeze(0).expand(B, -1)
                new = rotate(new.unsqueeze(1), *tables(positions, new)).squeeze(1)
            else:
                new = kv.new_zeros((B, 0, size))
            if cache is None:
                return new
            held = cache.get(name)
            held = new if held is None else torch.cat([held, new], dim=1)
            cache[name], cache[name + "_count"] = held, held.shape[1]
            return held

        def chosen(m_, x, latent, cache, positions, entries):
            """The indexer's top-k choice, as an additive bias over the entries (B, 1, T, entries)."""
            B, T, _ = x.shape
            keys = compressor(x, cache, "index", m_.i_kv_proj, m_.i_gate_proj, m_.i_bias, m_.i_norm, idim, True)
            q = m_.i_q_b_proj(latent).view(B, T, ih, idim).transpose(1, 2)
            q = rotate(q, *tables(positions, x)).transpose(1, 2)
            scores = torch.relu(torch.matmul(q.float(), keys.transpose(-1, -2).float().unsqueeze(1))) * idim ** -0.5
            weights = m_.i_weights_proj(x).float() * ih ** -0.5
            scores = (scores * weights.unsqueeze(-1)).sum(dim=2)  # (B, T, entries)
            bias = x.new_full((B, 1, T, entries + 1), float("-inf"))
            if entries:
                closed = (positions + 1) // m
                future = torch.arange(entries, device=x.device).view(1, 1, -1) >= closed.unsqueeze(-1)
                picks = scores.masked_fill(future, float("-inf")).topk(min(topk, entries), dim=-1).indices
                picks = torch.where(picks >= closed.unsqueeze(-1), entries, picks)
                bias.scatter_(-1, picks.unsqueeze(1), 0.0)
            return bias[..., :entries]

        def forward(m_, x, state):
            B, T, _ = x.shape
            cache = layer_state(state, m_)
            past = cache.get("seen", 0) if cache is not None else 0
            positions = (torch.arange(T, device=x.device) + past).unsqueeze(0).expand(B, -1)
            cos, sin = tables(positions, x)
            latent = norm(m_.q_a_norm, m_.q_a_proj(x))
            q = m_.q_b_proj(latent).view(B, T, h, hd).transpose(1, 2)
            q = rotate(unweighted(q, EPS), cos, sin)
            kv = rotate(norm(m_.kv_norm, m_.kv_proj(x)).view(B, T, 1, hd).transpose(1, 2), cos, sin)
            held = 0
            if cache is not None:  # the window's last window - 1 keys, for the next queries
                kept = cache.get("keys")
                kv = kv if kept is None else torch.cat([kept, kv], dim=2)
                held = kv.shape[2] - T
                cache["keys"], cache["seen"] = kv[:, :, max(kv.shape[2] - (win - 1), 0):], past + T
                if m is None:  # as transformers' DynamicSlidingWindowLayer holds them: twice
                    cache["values"] = cache["keys"]
            i = torch.arange(T, device=x.device).unsqueeze(1) + past
            j = torch.arange(kv.shape[2], device=x.device).unsqueeze(0) + past - held
            bias = x.new_zeros(T, kv.shape[2]).masked_fill((j > i) | (i - j >= win), float("-inf"))
            bias = bias.to(x.dtype).expand(B, 1, T, -1)
            if m is not None:
                entries = compressor(x, cache, "entries", m_.c_kv_proj, m_.c_gate_proj, m_.c_bias, m_.c_norm, hd,
                                     indexed)
                count = entries.shape[1]
                if indexed:
                    extra = chosen(m_, x, latent, cache, positions, count)
                else:
                    future = torch.arange(count, device=x.device).view(1, 1, -1) >= ((positions + 1) // m).unsqueeze(-1)
                    extra = x.new_zeros(B, 1, T, count).masked_fill(future.unsqueeze(1), float("-inf"))
                kv = torch.cat([kv, entries.unsqueeze(1)], dim=2)
                bias = torch.cat([bias, extra.to(x.dtype)], dim=-1)
            keys = kv.expand(B, h, *kv.shape[2:]).reshape(B, h, *kv.shape[2:]) if h > 1 else kv
            values = kv.expand(B, h, *kv.shape[2:]).reshape(B, h, *kv.shape[2:]) if h > 1 else kv
            scores = torch.matmul(q, keys.transpose(2, 3)) * hd ** -0.5 + bias
            logits = torch.cat([scores, m_.sinks.reshape(1, -1, 1, 1).expand(B, -1, T, -1)], dim=-1)
            logits = logits - logits.max(dim=-1, keepdim=True).values
            probs = logits.softmax(dim=-1)[..., :-1].to(values.dtype)  # fp32 sinks make the logits fp32
            out = torch.matmul(probs, values).transpose(1, 2).contiguous()  # (B, T, h, hd)
            out = rotate(out.transpose(1, 2), cos, -sin).transpose(1, 2)
            grouped = out.reshape(B, T, g, -1).reshape(-1, g, h * hd // g).transpose(0, 1)
            grouped = torch.bmm(grouped, m_.o_a.view(g, -1, h * hd // g).transpose(1, 2)).transpose(0, 1)
            out = m_.o_b_proj(grouped.reshape(B, T, g, -1).flatten(2))
            return x + out if residual else out

        part = b.part(forward, **mods)
        part.q_a_norm, part.kv_norm = nn.Parameter(torch.ones(qr)), nn.Parameter(torch.ones(hd))
        part.o_a = nn.Parameter(torch.randn(g * olr, h * hd // g) * 0.02)
        part.sinks = nn.Parameter(torch.zeros(h))
        if m is not None:
            part.c_bias, part.c_norm = nn.Parameter(torch.zeros(m, width)), nn.Parameter(torch.ones(hd))
        if indexed:
            part.i_bias, part.i_norm = nn.Parameter(torch.zeros(m, 2 * idim)), nn.Parameter(torch.ones(idim))
        return keep_fp32(part, FP32)
