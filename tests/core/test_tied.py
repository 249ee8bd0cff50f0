"""`tied: NAME` blocks: the same weights wherever a block of that name stands (Zamba2's shared transformer blocks,
used in turn across depth), each use's `adapter` parts its own. Parameters once a name, FLOPs and saved bytes at
every use, checked against PyTorch running one set of modules at every place (with Zamba2's pieces: the
embedding appended to the stream, attention that writes another width, per-use adapters); refusals one line
each. Zamba2 itself against transformers: tests/components/test_mamba2.py, tests/hf/."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import symcost
from symcost.errors import SpecError

def block(name: str, indent: int, adapters: tuple[bool, bool], gated: bool) -> str:
    """A Zamba2-like shared block at `indent`: [h, e], a norm, attention writing d, a norm, a gated MLP."""
    attention, mlp = (", adapter_rank: r" if a else "" for a in adapters)
    lines = [f"- tied: {name}", "  layers:", "    - concat_embedding: {dim: d}", "    - rmsnorm: {dim: 2 * d}",
             f"    - attention: {{dim: 2 * d, heads: heads, causal: true, out: d, residual: false{attention}}}",
             "    - rmsnorm: {dim: d}",
             f"    - mlp: {{dim: d, hidden: hidden, gated: {str(gated).lower()}, activation: gelu, residual: false"
             f"{mlp}}}"]
    return "\n".join(" " * indent + line for line in lines)


def spec(names=("A", "B"), adapters=(True, True), gated=True) -> str:
    """The first block inside a repeat, the second at the top level after it."""
    return f"""\
name: tied
dims: {{d: 8, heads: 2, n: 2, seq_len: 5, batch: 2, vocab: 11, hidden: 12, r: 3}}
layers:
  - embedding: {{vocab: vocab, dim: d}}
  - repeat: n
    layers:
{block(names[0], 6, adapters, gated)}
      - rmsnorm: {{dim: d}}
      - mlp: {{dim: d, hidden: hidden}}
{block(names[1], 2, adapters, gated)}
  - rmsnorm: {{dim: d}}
  - lm_head: {{dim: d, vocab: vocab, tied: true}}
"""


def differing() -> str:
    """Two blocks of one name whose MLPs differ."""
    return spec().replace("hidden: hidden, gated", "hidden: 2 * hidden, gated", 1).replace("tied: B", "tied: A")


sizes = st.fixed_dictionaries({"heads": st.integers(1, 3), "per_head": st.integers(1, 3), "n": st.integers(1, 3),
                               "seq_len": st.integers(1, 6), "batch": st.integers(1, 2), "hidden": st.integers(1, 9),
                               "r": st.integers(1, 4)})


def values(drawn: dict) -> dict:
    out = dict(drawn)
    out["d"] = out["heads"] * out.pop("per_head")
    return out


@settings(max_examples=8, deadline=None, derandomize=True)
@given(sizes, st.sampled_from([("A", "A"), ("A", "B")]), st.tuples(st.booleans(), st.booleans()), st.booleans(),
       st.sampled_from(["none", "selective", "full"]))
def test_tied_blocks_equal_pytorch(drawn, names, adapters, gated, recompute):
    """Parameters, forward and backward FLOPs per component equal FlopCounterMode's on a model that holds one set
    of each name's modules (its adapters each use's own), and the bytes saved for backward equal what
    saved_tensors_hooks sees, with and without recomputation (a full recomputation's checkpoints keep the
    embedding's copy the blocks read)."""
    s = symcost.loads(spec(names, adapters, gated))
    v = values(drawn)
    report = symcost.verify(s, v, backward=True)
    assert report.match, [(r.path, r.symbolic, r.measured) for r in report.rows if r.symbolic != r.measured]
    assert report.unattributed == {"forward": 0, "backward": 0}
    memory = symcost.verify_memory(s, v, recompute=recompute)
    assert memory.match, [(r.path, r.symbolic, r.measured) for r in memory.rows]


@settings(max_examples=20, deadline=None)
@given(sizes)
def test_a_name_holds_its_weights_once_and_its_adapters_at_every_use(drawn):
    """One name used n + 1 times against two names: the same work, and the block's weights (less its adapters)
    fewer by one copy; against no adapters, r x (2d + 3 x 2d + 2d + 2 x hidden) adapter weights a use."""
    v = values(drawn)
    d, r, h, n = v["d"], v["r"], v["hidden"], v["n"]
    one, two = (symcost.evaluate(symcost.loads(spec(names)), v).total for names in (("A", "A"), ("A", "B")))
    bare = symcost.evaluate(symcost.loads(spec(("A", "A"), (False, False))), v).total
    for metric in ("forward", "backward"):
        assert one[metric] == two[metric]
    adapters = 3 * (2 * d * r + r * 2 * d) + d * r + r * 2 * h  # q, k, v's (2d -> r -> 2d); the MLP's
    block = 2 * d + 3 * (2 * d) ** 2 + 2 * d * d + d + 3 * d * h  # norms, q, k, v (2d -> 2d), o (2d -> d), MLP
    assert two["params"] - one["params"] == block
    assert one["params"] - bare["params"] == (n + 1) * adapters


@pytest.mark.parametrize("text, fragment", [
    (differing(), "layers.2.layers: these layers differ from those of the first `tied: A` block (at "
                  "layers.1.layers.0)"),
    (spec().replace("tied: B", "tied: 2B"), "layers.2.tied: String should match pattern"),
    (spec().replace("concat_embedding: {dim: d}", "concat_embedding: {dim: d, width: d}", 1),
     "layers.1.layers.0.layers.0.concat_embedding.width: unknown field"),
    (spec().replace("- embedding: {vocab: vocab, dim: d}", "- linear: {dim: d, out: d}")
     .replace("lm_head: {dim: d, vocab: vocab, tied: true}", "linear: {dim: d, out: d}"),
     "concat_embedding: concat_embedding appends the token embedding's output: put an `embedding` earlier"),
    (spec().replace("out: d, residual: false", "out: d", 1), "attention.out: out 8 differs from dim 16: a layer that "
                                                            "changes the width cannot add its input back"),
    (spec().replace("causal: true, out: d", "causal: true, qk_norm: full, out: d"),
     "attention.adapter_rank: adapters are modelled on plain q, k and v projections (Zamba2's)"),
])
def test_bad_tied_blocks_are_one_line_with_the_place(text, fragment):
    with pytest.raises(SpecError, match=pytest.importorskip("re").escape(fragment)):
        symcost.evaluate(symcost.loads(text))


def test_a_tied_block_inside_another_or_in_the_mtp_modules_is_refused():
    nested = spec().replace("          - concat_embedding: {dim: d}",
                            "          - tied: C\n            layers: [{rmsnorm: {dim: d}}]\n"
                            "          - concat_embedding: {dim: d}", 1)
    with pytest.raises(SpecError, match=r"layers\.1\.layers\.0\.layers\.0\.tied: tied blocks stand in the model's "
                                        r"layers, not inside another tied block"):
        symcost.derive(symcost.loads(nested))
    mtp = spec() + "mtp:\n  depth: 1\n  layers:\n    - tied: M\n      layers: [{rmsnorm: {dim: d}}]\n"
    with pytest.raises(SpecError, match=r"mtp\.layers\.0\.tied: tied blocks stand in the model's layers"):
        symcost.derive(symcost.loads(mtp))


def test_plan_and_serve_refuse_tied_weights_and_tensor_parallel_adapters():
    for run in (lambda s: symcost.plan(s, gpus=1), symcost.serve):
        with pytest.raises(SpecError, match=r"layers\.1\.layers\.0\.tied: plan does not split tied weights"):
            run(symcost.loads(spec()))
    adapted = """\
name: adapted
dims: {d: 8, seq_len: 4, vocab: 11}
layers:
  - embedding: {vocab: vocab, dim: d}
  - mlp: {dim: d, hidden: 16, adapter_rank: 2}
  - lm_head: {dim: d, vocab: vocab}
"""
    with pytest.raises(SpecError, match=r"layers\.1\.mlp: .*a per-use adapter \(adapter_rank\) has no tensor-parallel "
                                        r"rule here"):
        symcost.plan(symcost.loads(adapted), gpus=2, tp=2)


def test_bad_input_from_the_command_line(cli, write):
    path = write(differing())
    result = cli("derive", path)
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "layers.2.layers: these layers differ" in result.stderr and "Traceback" not in result.stderr


def test_a_fine_tune_of_tied_blocks_is_refused():
    """An adapter on a tied linear would serve every use (PEFT wraps the one module): not modelled, so refused,
    as a fine-tune of a layer with its own per-use adapters is."""
    plain = spec(adapters=(False, False))
    with pytest.raises(SpecError, match=r"layers\.1\.layers\.0\.tied: a fine-tune of tied blocks is not modelled"):
        symcost.derive(symcost.finetune(symcost.loads(plain), method="lora", rank=2))
