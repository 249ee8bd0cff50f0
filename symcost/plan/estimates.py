"""Published per-GPU formulas beside the plan's exact bytes, each named, cited and with its error.

- ZeRO (Rajbhandari et al. 2020, Sec. 3 and Fig. 1): with Psi parameters on the rank (its share of
  the model), K bytes of optimizer state per parameter and N_d data-parallel ranks, model states
  are (2 + 2 + K) Psi, 2 Psi + 2 Psi + K Psi/N_d, 2 Psi + (2 + K) Psi/N_d and (2 + 2 + K) Psi/N_d
  for stages 0-3 (16-bit weights and gradients).
- Korthikanti et al. 2022, Table 2: activations per layer and micro-batch, 16-bit, a GPT layer
  with a 4h MLP and one-byte dropout masks: s b h (10 + 24/t + 5 a s/(h t)) with tensor parallelism,
  s b h (34/t + 5 a s/(h t)) with sequence parallelism too; 34 becomes the whole coefficient under
  selective recomputation (the a s/h term goes); times the layers and micro-batches the rank holds.
"""

from __future__ import annotations

import sympy

from .. import symbols


def estimates(derivation, ex, stage, numbers: dict, at, block_flight) -> list[dict]:
    """The published formulas that apply: both assume every parameter trains (none under a fine-tune); ZeRO's, that
    nothing is offloaded to the host."""
    out = []
    if derivation.tuned:
        return out
    psi = at(stage.weights + stage.expert)
    K = ex.precision.state_bytes(ex.optimizer)
    n = ex.dp * ex.cp
    zero = [(4 + K) * psi, 4 * psi + K * psi / n, 2 * psi + (2 + K) * psi / n, (4 + K) * psi / n][ex.zero]
    exact = numbers["weights_bytes"] + numbers["gradient_bytes"] + numbers["optimizer_bytes"]
    if ex.precision.bytes("weights") == 2 and ex.precision.bytes("grads") == 2 and ex.offload == "none":
        out.append(_row("zero_partition", f"Rajbhandari et al. 2020, Fig. 1: stage {ex.zero}, K = {K}, N_d = {n}",
                        "weights + gradients + optimizer states", zero, exact))
    dims = derivation.spec.dimset
    if all(name in dims for name in ("d_model", "n_heads", "seq_len")) and ex.precision.bytes("activations") == 2:
        value = lambda name: at(symbols.dim(name))
        s, h, a, t = value("seq_len") / ex.cp, value("d_model"), value("n_heads"), ex.tp
        layers = sum(at(p.count) for p in stage.pieces if p.place == "block" and p.site.component.attends == "self")
        per = (34 / t if ex.sequence_parallel else 10 + sympy.Rational(24, t))
        if ex.recompute == "none":
            per += 5 * a * s / (h * t)
        if ex.recompute in ("none", "selective"):  # Korthikanti's two cases (a list of parts is neither)
            korthikanti = s * ex.micro_batch * h * per * layers * at(block_flight)
            out.append(_row("korthikanti", "Korthikanti et al. 2022, Table 2 (a GPT layer, 16-bit, dropout masks)",
                            "activations", korthikanti, numbers["activation_bytes"]))
    return out


def _row(name, source, metric, estimate, exact) -> dict:
    return {"name": name, "source": source, "metric": metric, "estimate": estimate, "exact": exact,
            "relative_error": float((estimate - exact) / exact) if exact else None}
