"""scaling fit, optimal and compare as text (JSON is their to_dict)."""

from __future__ import annotations

from .text import human, width, wrap


def fit_text(fit, limit: int | None = None) -> str:
    limit, v, source = limit or width(), fit.values, fit.source
    lines = ["L(N, D) = E + A/N^alpha + B/D^beta"]
    lines += wrap(f"fitted to {source} by Hoffmann et al. 2022's approach 3 (Huber delta 1e-3 in log space, "
                  f"L-BFGS from {fit.starts:,} starts, the best polished)", limit) + [""]
    for k in ("E", "A", "B", "alpha", "beta"):
        ci = fit.ci.get(k)
        lines.append(f"  {k:<6} {v[k]:>12.6g}" + (f"   95% CI [{ci[0]:.4g}, {ci[1]:.4g}] (bootstrap)" if ci else ""))
    lines += [f"  objective {fit.objective:.6g}; {fit.converged:,} of {fit.starts:,} starts converged",
              f"  residuals (log L - log fit): max |r| = {max(abs(r) for r in fit.residuals):.3g}", ""]
    a, b = v["beta"] / (v["alpha"] + v["beta"]), v["alpha"] / (v["alpha"] + v["beta"])
    lines.append(f"  under C = 6ND: N_opt ~ C^{a:.3f}, D_opt ~ C^{b:.3f}")
    for name, ap in fit.approaches.items():
        lines.append(f"  {name.replace('_', ' ')}: " + (ap if isinstance(ap, str) else f"N_opt = {ap['k']:.3g} C^{ap['a']:.3f}"))
    return "\n".join(lines + [f"warning: {w}" for w in fit.warnings])


def optimal_text(o, limit: int | None = None) -> str:
    limit, e = limit or width(), o.exact
    lines = wrap(f"{o.spec}: compute-optimal {o.unknown} for C = {o.flops:.3g} FLOPs, law {o.law.name} "
                 f"({o.law.source}); N = {o.n_means}", limit) + [""]
    lines += ["exact training compute (the spec's FLOPs per token):",
              f"  {o.unknown} = {e.size:,}: {human(e.params)} params ({human(e.law_params)} counted as N), "
              f"{human(e.tokens)} tokens ({e.tokens / e.law_params:.1f} per N), "
              f"{human(e.flops_per_token)} FLOPs per token, predicted loss {e.loss:.5f}"]
    if o.six_nd:
        s, at = o.six_nd, o.six_nd["spec_size_holding_it"]
        lines += ["", "the law's 6ND optimum (C = 6 N D):",
                  f"  N = {human(s['params'])}, D = {human(s['tokens'])}, predicted loss {s['loss']:.5f}",
                  f"  the spec holding that N: {o.unknown} = {at['size']:,}, whose exact FLOPs per token "
                  f"({human(at['flops_per_token'])}, 6N = {human(6 * at['law_params'])}) buy "
                  f"{human(at['tokens'])} tokens: predicted loss {at['loss']:.5f}"]
    if o.served:
        sv, b, c = o.served, o.served["best"], o.served["training_optimal"]
        lines += ["", f"serving {human(sv['served_tokens'])} tokens at the same loss ({sv['target_loss']:.5f}; "
                      "Sardana et al. 2024):",
                  f"  {o.unknown} = {b['size']:,}: train on {human(b['train_tokens'])} tokens, total "
                  f"{b['total_flops']:.3g} FLOPs (train {b['train_flops']:.3g}, serve {b['serve_flops']:.3g})",
                  f"  against the training optimum's total {c['total_flops']:.3g} FLOPs",
                  f"  serving priced at {sv['serving_flops_per_token']}"]
    lines += ["", "predicted losses are the law's extrapolation, not measurements"]
    return "\n".join(piece for line in lines for piece in wrap(line, limit))


def compare_text(c, limit: int | None = None) -> str:
    limit, rows, flops, law = limit or width(), c.rows, c.flops, c.law
    lines = wrap(f"at C = {flops:.3g} FLOPs, law {law.name} ({law.source}):", limit)
    for r in rows:
        lines += wrap(f"  {r['name']}: {human(r['law_params'])} N ({r['n_means']}), {human(r['tokens'])} tokens at "
                      f"{human(r['flops_per_token'])} FLOPs per token: predicted loss {r['loss']:.5f}", limit)
    best = min(rows, key=lambda r: r["loss"])
    lines += wrap(f"lower predicted loss: {best['name']} (a prediction of the law, not a measurement)", limit)
    return "\n".join(lines)
