"""FLOP conventions. A FLOP count means nothing without one, so every output names it.

- pytorch: exactly what torch.utils.flop_counter.FlopCounterMode counts — 2 FLOPs per
  multiply-accumulate of matmul-class ops (mm, bmm, addmm, convolution); elementwise
  work (norms, activations, softmax, bias and residual adds) counts 0; causal attention
  is counted in full, as the kernels multiply the whole score matrix.
- macs: multiply-accumulates (the fvcore / ptflops / thop habit) = pytorch / 2.
- kernel: the matmul FLOPs a fused kernel needs: pytorch's, with causal attention counted over the
  n(n+1)/2 scores the mask keeps (a window's kept pairs too; lightning attention's in-block pairs;
  DeepSeek-V4's window keys and the compressed entries each query may see, components/compressed_attention.py),
  as FlashAttention skips masked blocks (it computes the diagonal's blocks whole: a little more),
  and the work of chunked linear attention that its reference runs uncounted (Gated DeltaNet's
  triangular solves, components/gated_deltanet.py; KDA's elementwise Q x Q products and triangle
  inversion, components/kda.py) — the floor serve's time bounds divide by the peak.
- full: pytorch plus elementwise work at the per-element constants in ELEMENTWISE, and
  causal attention counted as the n(n+1)/2 scores that matter. Backward elementwise
  work is taken as 2x forward (one pass for each of the gradient's reads and writes);
  an assumption, stated, not measured.
"""

from __future__ import annotations

from collections import namedtuple

# FLOPs per element under `full`. NB: these are symcost's stated constants, not measurements.
ELEMENTWISE = {
    "layernorm": 5,  # mean (1), subtract (1), square + sum (2), scale by 1/std (1)
    "rmsnorm": 3,  # square + sum (2), scale by 1/rms (1)
    "affine": 1,  # each of a norm's weight multiply and bias add
    "bias": 1,  # add a bias to each output element
    "clamp": 1,  # compare and select
    "residual": 1,  # add a branch back into the stream
    "position_add": 1,  # add a learned position vector to each token
    "softmax": 5,  # max, subtract, exp, sum, divide
    "attention_scale": 1,  # multiply scores by 1/sqrt(head_dim)
    "rotary": 3,  # x*cos + rotate(x)*sin: 2 multiplies, 1 add per rotated element
    "gate": 1,  # the elementwise product of a gated MLP
    "combine": 2,  # MoE: scale an expert's output by its routing weight, add it in
    "sigmoid": 4,  # negate, exp, add 1, divide
    "batchnorm": 5,  # as layernorm, over the batch and positions of each channel
    "pool": 1,  # per window element read by a max or average pool
    "mean": 1,  # per element averaged (token pooling)
    "tanh": 4,
    "rnn_cell": 5,  # per hidden unit and step: add the two projections (1), tanh (4)
    "gru_cell": 20,  # r, z: 2 adds + 2 sigmoids (8); n: r*h_n, add, tanh (6); (1-z)*n + z*h (4)
    "lstm_cell": 28,  # 4 adds of projections, 3 sigmoids (12), 2 tanh (8), c = f*c + i*g (3), h = o*tanh(c) (1)
    "relu": 1,
    "relu2": 2,  # relu, then the square
    "gelu": 8,  # tanh approximation: x^3, 2 mul, add, tanh (~2), add, mul
    "silu": 4,  # negate, exp, add 1, divide
    "quick_gelu": 6,  # x * sigmoid(1.702 x): multiply, sigmoid (4), multiply
    "l2_normalize": 3,  # per element of a vector divided by its norm: square, add, divide (sqrt: per vector)
    "sqrt": 1,
    "scale": 1,  # multiply by a scalar
    "softplus": 3,  # exp, add 1, log
    "exp": 1,
    "ssm_discretize": 4,  # per state element: dt*A, exp, dt*B, times the input
    "ssm_step": 2,  # per state element and step: h = dA*h + dBu
    "ssm_skip": 2,  # per channel: y + D*u
    # Mamba-2's chunked scan (SSD)
    "ssd_decay": 4,  # per position and head: the cumsum of A*dt, the chunk-end difference and its exp, exp(cumsum)
    "ssd_mask": 3,  # per in-chunk score: the segment sum's add, its exp, the product with C.B
    "ssd_carry": 2,  # per pair of chunk starts and head: the segment sum's add, its exp
    "ssd_combine": 2,  # per output value: decay the carried-in term, add the in-chunk one
    # Gated DeltaNet's recurrent step, per state element: decay (1), read by the key (2), write the
    # correction (2), read out by the query (2)
    "delta_step": 7,
    "dropout": 2,  # multiply by the mask, scale by 1/(1 - p) (drawing the mask not counted)
    "identity": 0,
}
BACKWARD_ELEMENTWISE_FACTOR = 2


# name, FLOPs per multiply-add, counts elementwise work, halves causal attention, description;
# counter_formulas: follow FlopCounterMode's formulas where they differ from the arithmetic
# done (its weight gradient of a grouped convolution counts groups x the forward).
Convention = namedtuple(
    "Convention", "name flops_per_mac elementwise causal_half description counter_formulas", defaults=(True,)
)


CONVENTIONS = {
    c.name: c
    for c in (
        Convention("pytorch", 2, False, False,
                   "FlopCounterMode: 2 FLOPs per multiply-add, matmul-class ops only, causal attention in full"),
        Convention("macs", 1, False, False, "multiply-accumulates of matmul-class ops (= pytorch / 2)"),
        Convention("kernel", 2, False, True,
                   "2 FLOPs per multiply-add of matmul-class ops, causal attention over the kept scores only",
                   counter_formulas=False),
        Convention("full", 2, True, True,
                   "pytorch + elementwise work at symcost's per-element constants, causal attention halved",
                   counter_formulas=False),
    )
}
PYTORCH = CONVENTIONS["pytorch"]


def get(name: str) -> Convention:
    return CONVENTIONS[name]
