"""Multi-head latent attention (DeepSeek-V2, 2024; DeepSeek-V3): keys and values from a
compressed latent, queries optionally through a low-rank path.

    q:  x -> q_a_proj (dim -> q_lora_rank) -> RMSNorm -> q_b_proj (-> heads x (nope + rope))
        (or one q_proj when q_lora_rank is unset)
    kv: x -> kv_a_proj (dim -> kv_lora_rank + rope) -> split: latent, k_rope (one head)
        latent -> RMSNorm -> kv_b_proj (-> heads x (nope + v_head_dim)) -> k_nope, v
    scores over nope + rope features per head; values of v_head_dim; o_proj back to dim.

The rope part of each key is shared by all heads (computed once, broadcast), so only the
rope features are rotated. A decoder caches the normalised latent and the rotated rope key
— (kv_lora_rank + qk_rope_dim) values per token — and the reference expands every cached
latent through kv_b_proj again at each step (the plain form; implementations that absorb
kv_b_proj into the query and output projections compute less). `bias` is DeepSeek's `attention_bias`: it applies to q_a_proj,
kv_a_proj and o_proj, as in the reference implementation. NB: causal counts as in
attention.py — in full under pytorch, halved under `full`.

DeepSeek Sparse Attention (DeepSeek-V3.2, GLM-5; `index_heads`, `index_dim`, `index_topk`): a lightning
indexer scores every key for each query — index_heads query heads of index_dim from the query's
latent, one key of index_dim from x (LayerNorm'd), a weight per head from x: relu(q·k) weighted and
summed over the heads — and the attention sees only each query's index_topk best keys. As
transformers runs it (DeepseekV32Indexer): the indexer without gradients (no backward, nothing kept),
its scores over every key the layer holds, and the attention over every key with the rest masked:
under pytorch the attention counts as MLA's, plus the indexer's projections and 2·b·index_heads·
(index_dim + 1) FLOPs a score. Under `kernel` and `full` (the work FlashMLA's sparse kernel and
DeepGEMM's indexer kernel do: the DeepSeek-V3.2 report, Sec. 2) the indexer scores the causal pairs
and the attention only the kept ones: query p sees min(p + 1, index_topk) keys. The cache keeps each
token's index_dim indexer key beside the latent; the mask, one per sequence, is kept for backward.
The reference build leaves the indexer's rotation out (it changes which keys are chosen, not how
many, nor any count).
"""

from __future__ import annotations

import sympy
from pydantic import StrictBool

from ..checks import Check
from ..cost import Cost
from ..symbols import ACT
from .attention import above_one, cached_tokens, core, core_saved, extend_cache, hidden, products, score_entries
from .rmsnorm import rms_saved
from .base import Component, Ctx, Size
from .parallel import TP, Rule
from .rmsnorm import RMSNorm


class MLA(Component):
    kind = "mla"
    attends = "latent"
    mixes_tokens = True
    # vLLM's DeepseekV2MLAAttention: the query and key/value down-projections whole on every rank
    # (ReplicatedLinear), their up-projections split by heads (column-parallel), o_proj by rows; the
    # latent cache whole on every rank. Serving only (Rule.trains): in training the down-projections'
    # weight gradients are partial sums over the ranks, a collective no rule here counts
    parallel = Rule("parallel", lambda c: {"heads": c.heads / TP}, lambda c: (("heads", c.heads),),
                    torch=(("q_proj", "colwise"), ("q_b_proj", "colwise"), ("kv_b_proj", "colwise"),
                           ("o_proj", "rowwise")), trains=False)
    dim: Size
    heads: Size
    kv_lora_rank: Size  # the cached latent
    qk_nope_dim: Size  # per-head query/key features without rotation
    qk_rope_dim: Size  # per-head rotated features (one shared key head)
    v_head_dim: Size
    q_lora_rank: Size | None = None  # unset: queries by one dim -> heads x qk projection
    # DeepSeek Sparse Attention's lightning indexer (see the docstring): all three, or none
    index_heads: Size | None = None
    index_dim: Size | None = None
    index_topk: Size | None = None
    bias: StrictBool = False
    causal: StrictBool = False
    residual: StrictBool = True

    @property
    def qk_head_dim(self):
        return self.qk_nope_dim + self.qk_rope_dim

    def ring(self):
        """Each token's keys and values after kv_b_proj, every head's (heads x (nope + rope) and heads x
        v_head_dim): Megatron-Core runs MLA's core as ordinary attention over them, so its ring attention
        passes those, not the latent."""
        return self.heads * (self.qk_head_dim + self.v_head_dim)

    def parts(self, ctx: Ctx):
        h = self.heads
        norm = lambda width: RMSNorm.model_construct(dim=width).parts(ctx)["norm"]
        if self.q_lora_rank is None:
            parts = {"q_proj": ctx.linear(self.dim, h * self.qk_head_dim, False)}
        else:
            parts = {
                "q_a_proj": ctx.linear(self.dim, self.q_lora_rank, self.bias),
                "q_a_norm": norm(self.q_lora_rank),
                "q_b_proj": ctx.linear(self.q_lora_rank, h * self.qk_head_dim, False, input_grad=True),
            }
        parts["kv_a_proj"] = ctx.linear(self.dim, self.kv_lora_rank + self.qk_rope_dim, self.bias)
        parts["kv_a_norm"] = norm(self.kv_lora_rank)
        # Every key and value is expanded from the latent, cached ones too (see the docstring).
        latents = ctx.batch * cached_tokens(ctx) if self.causal else ctx.tokens
        parts["kv_b_proj"] = ctx.linear(
            self.kv_lora_rank, h * (self.qk_nope_dim + self.v_head_dim), False, tokens=latents, input_grad=True
        )
        if ctx.flow.rotary is not None:  # query heads and the one shared key head
            parts["rotary"] = ctx.elementwise(ctx.tokens * (h + 1) * self.qk_rope_dim, "rotary")
        entries = score_entries(ctx, ctx.seq_len, self.causal)
        if self.sparse:  # the kernel's attention sees each query's top-k keys; the reference masks the rest
            conv, heads, width = ctx.convention, self.index_heads, self.index_dim
            indexed = Cost.weights(self.q_lora_rank * heads * width + self.dim * width + 2 * width + self.dim * heads)
            parts["indexer"] = indexed + Cost(forward=conv.flops_per_mac * (
                ctx.tokens * (self.q_lora_rank * heads * width + self.dim * (width + heads))
                + ctx.batch * heads * entries * (width + 1))) + ctx.elementwise(ctx.batch * heads * entries, "relu")
            if conv.causal_half:
                entries = score_entries(ctx, ctx.seq_len, True, window=self.index_topk)
        parts |= products(ctx, h, entries, self.qk_head_dim, self.v_head_dim)
        if self.causal:  # the cache holds the normalised latent and the rotated rope key (and the indexer's key)
            parts["kv_cache"] = Cost(cache=latents * (self.kv_lora_rank + self.qk_rope_dim
                                                      + (self.index_dim if self.sparse else 0)))
        parts["o_proj"] = ctx.linear(h * self.v_head_dim, self.dim, self.bias, input_grad=True)
        if self.residual:
            parts["residual"] = ctx.elementwise(ctx.tokens * self.dim, "residual")
        return parts

    def saved(self, ctx: Ctx):
        T, h, nope, rope, vd = ctx.tokens, self.heads, self.qk_nope_dim, self.qk_rope_dim, self.v_head_dim
        kvr = self.kv_lora_rank
        # x and o_proj's input; kv_a_norm's input is a slice of kv_a's output (in fp32 it keeps
        # all of it), and kv_b_proj reads the normalised latent
        kept = ctx.input_saved(self.dim) + T * (h * vd + kvr) * ACT + rms_saved(T, kvr, T * (kvr + rope) * ACT)
        if self.q_lora_rank is not None:  # the same for the query's low-rank path
            qr = self.q_lora_rank
            kept += T * qr * ACT + rms_saved(T, qr, T * qr * ACT)
        # v is a slice of kv_b_proj's output: sdpa and a checkpoint keep all of it
        core = core_saved(ctx.batch, h, ctx.seq_len, ctx.seq_len, nope + rope, vd, self.causal,
                          v_stored=T * h * (nope + vd), selected=self.sparse)
        # eager: the matmul copies v (a slice of kv_b's output) unless one of batch, heads or
        # tokens is 1, when it can read the slice as it lies, keeping all of kv_b's output
        slice_kept = (1 - above_one(ctx.batch, h, ctx.seq_len)) * T * h * nope * ACT
        return Cost(saved=kept, core_eager=slice_kept) + core

    @property
    def sparse(self) -> bool:
        """Whether an indexer chooses the keys (its sizes and the query's latent given; else checks refuses)."""
        return None not in (self.index_heads, self.index_dim, self.index_topk, self.q_lora_rank)

    def checks(self, ctx):
        yield from super().checks(ctx)
        given = [f for f in ("index_heads", "index_dim", "index_topk") if getattr(self, f) is not None]
        if given and (len(given) < 3 or self.q_lora_rank is None or not self.causal):
            yield Check(given[0], sympy.false, "the sparse attention's indexer needs index_heads, index_dim and "
                        "index_topk together, with q_lora_rank (its queries come from the query's latent) and "
                        "causal: true")
        if (rotary := ctx.flow.rotary) is not None:
            yield Check("qk_rope_dim", sympy.Eq(rotary, self.qk_rope_dim),
                        "the rotary layer rotates {} features, but qk_rope_dim is {}", (rotary, self.qk_rope_dim))

    def build(self, b):
        import torch
        from torch import nn

        from . import rotary

        d, h = b.int(self.dim), b.int(self.heads)
        nope, rope, vd, kvr = (b.int(x) for x in (self.qk_nope_dim, self.qk_rope_dim, self.v_head_dim, self.kv_lora_rank))
        rotate, causal, residual = b.flow.rotary is not None, self.causal, self.residual
        mods = {}
        if self.q_lora_rank is None:
            mods["q_proj"] = nn.Linear(d, h * (nope + rope), bias=False)
        else:
            qr = b.int(self.q_lora_rank)
            mods |= {
                "q_a_proj": nn.Linear(d, qr, bias=self.bias),
                "q_a_norm": nn.RMSNorm(qr),
                "q_b_proj": nn.Linear(qr, h * (nope + rope), bias=False),
            }
        if self.sparse:
            heads, width, topk = b.int(self.index_heads), b.int(self.index_dim), b.int(self.index_topk)
            mods |= {"index_q": nn.Linear(qr, heads * width, bias=False), "index_k": nn.Linear(d, width, bias=False),
                     "index_norm": nn.LayerNorm(width), "index_weights": nn.Linear(d, heads, bias=False)}
        mods |= {
            "kv_a_proj": nn.Linear(d, kvr + rope, bias=self.bias),
            "kv_a_norm": nn.RMSNorm(kvr),
            "kv_b_proj": nn.Linear(kvr, h * (nope + vd), bias=False),
            "o_proj": nn.Linear(h * vd, d, bias=self.bias),
        }

        attend = core(b)
        sparse = self.sparse

        def indexed(m, x, latent, state):
            """The keys each query's indexer keeps (B, T, S), scored without gradients, as transformers does."""
            B, T, _ = x.shape
            with torch.no_grad():
                q = m.index_q(latent).view(B, T, heads, width)
                k, _, past = extend_cache(m.index_k, state, m.index_norm(m.index_k(x)).view(B, 1, T, width),
                                          x.new_empty(B, 1, T, 0), causal, None)  # each token's key, cached
                scores = torch.relu(torch.matmul(q, k.transpose(-1, -2)))  # (B, T, heads, S)
                scores = torch.matmul(m.index_weights(x).unsqueeze(-2), scores).squeeze(-2)  # (B, T, S)
                scores = scores.masked_fill(hidden(T, past + T, past, None, None, x.device), float("-inf"))
                chosen = scores.topk(min(topk, past + T), dim=-1).indices
                return torch.zeros_like(scores, dtype=torch.bool).scatter(-1, chosen, True)

        def forward(m, x, state):
            B, T, _ = x.shape
            if hasattr(m, "q_proj"):
                q = m.q_proj(x)
            else:
                latent = m.q_a_norm(m.q_a_proj(x))
                q = m.q_b_proj(latent)
            selected = indexed(m, x, latent, state) if sparse else None
            q = q.view(B, T, h, nope + rope).transpose(1, 2)  # (B, h, T, nope + rope)
            q_nope, q_rope = q.split((nope, rope), dim=-1)
            latent, k_rope = m.kv_a_proj(x).split((kvr, rope), dim=-1)  # (B, T, kvr), (B, T, rope)
            latent = m.kv_a_norm(latent).view(B, 1, T, kvr)
            k_rope = k_rope.view(B, 1, T, rope)  # one key head, shared
            if rotate:
                q_rope, k_rope = rotary.apply(q_rope, state), rotary.apply(k_rope, state)
            latent, k_rope, past = extend_cache(m, state, latent, k_rope, causal, None)  # (B, 1, S, ·)
            S = past + T
            kv = m.kv_b_proj(latent.view(B, S, kvr)).view(B, S, h, nope + vd).transpose(1, 2)  # (B, h, S, nope + vd)
            k_nope, v = kv.split((nope, vd), dim=-1)
            q = torch.cat((q_nope, q_rope), dim=-1)
            k = torch.cat((k_nope, k_rope.expand(B, h, S, rope)), dim=-1)  # (B, h, S, nope + rope)
            out = attend(q, k, v, causal, None, past, 0.0, None, None, selected)  # (B, h, T, vd)
            out = m.o_proj(out.transpose(1, 2).reshape(B, T, h * vd))
            return x + out if residual else out

        return b.part(forward, **mods)
