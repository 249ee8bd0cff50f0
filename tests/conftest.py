import importlib.util
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from symcost.cli import main

# Text is fitted to $COLUMNS, else to the terminal: the tests read it at one width whatever
# runs them (a narrow terminal, or pytest-xdist's workers).
os.environ["COLUMNS"] = "100"
# As the command does (symcost.cli.run): OpenBLAS's extra threads only spin on symcost's small arrays,
# and beside pytest-xdist's workers they take the cores the other worker needs
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parent.parent
ARCHITECTURES = ROOT / "architectures"


def arch(name: str) -> str:
    return str(ARCHITECTURES / f"{name}.yaml")


_SETS = ["--set", "n_layers=2", "--set", "seq_len=64"]
# Every command with a JSON format, each mode that adds keys: the vocabulary and strict-JSON tests run them
JSON_COMMANDS = [
    *(["derive", arch(n)] for n in ("llama", "mixtral", "deepseek_v3", "resnet50")),
    *(pytest.param(["derive", arch(n)], marks=pytest.mark.slow) for n in ("mamba2", "clip", "lstm", "gemma2")),
    *(["eval", arch(n), "--no-cache"] for n in ("llama", "mixtral")),
    *(pytest.param(["eval", arch(n), "--no-cache"], marks=pytest.mark.slow) for n in ("resnet50", "clip")),
    # the slowest documents (a ResNet's memory, a plan search, a scaling fit, a verify) in the full suite only
    ["memory", arch("llama")], pytest.param(["memory", arch("resnet50")], marks=pytest.mark.slow),
    ["memory", arch("mixtral"), "--formulas"], ["memory", arch("llama"), "--parallel", "gpus=8,zero=3"],
    ["inference", arch("mixtral")],
    ["serve", arch("llama"), "--weights-format", "gptq,group=64", "--tp", "2", "--prompt-tokens", "512", "--draft", arch("transformer")],
    ["plan", arch("mixtral"), "--gpus", "64", "--tp", "2", "--ep", "8", "--pp", "2", "--tokens", "1e12", "--price",
     "2", "--tokens-per-second", "2e5"],
    pytest.param(["plan", arch("llama"), *_SETS, "--gpus", "8", "--search", "--top", "2"], marks=pytest.mark.slow),
    ["approx", arch("llama")], ["budget", arch("llama"), "--tokens", "1e12"],
    ["budget", arch("llama"), "--flops", "1e23", "--optimal-for", "d_model"],
    ["sweep", arch("llama"), "--vary", "seq_len=1024,2048", "--metric", "params", "--metric", "weights_bytes"],
    ["solve", arch("llama"), "--target", "params=7e9", "--for", "d_model"],
    ["crossover", arch("transformer"), "--between", "attention:scores", "mlp", "--in", "seq_len"],
    ["compare", arch("llama"), arch("mixtral"), "--vary", "seq_len=1024,2048"],
    pytest.param(["scaling", "fit", ROOT / "examples" / "runs_synthetic.csv", "--bootstrap", "2"], marks=pytest.mark.slow),
    ["scaling", "optimal", arch("llama"), "--flops", "1e23", "--for", "n_layers", "--serve", "1e12"],
    ["scaling", "compare", arch("llama"), arch("mixtral"), "--flops", "1e23"],
]
TORCH_JSON_COMMANDS = [pytest.param(["verify", arch("mixtral"), *_SETS], marks=[pytest.mark.needs("torch"), pytest.mark.slow]),
                       pytest.param(["verify", arch("transformer"), "--memory", *_SETS], marks=pytest.mark.needs("torch"))]


# a small decoder with two MTP modules (each a norm, a d x d projection, a norm and a block, then the shared head);
# HEADS: the MTP attention's heads, for a test to break
MTP_SPEC = """name: tiny
dims: {d: 64, hidden_size: 96, vocab: 100, seq_len: 8, heads: 4, n_layers: 4}
layers:
  - embedding: {vocab: vocab, dim: d}
  - repeat: n_layers
    layers:
      - rmsnorm: {dim: d}
      - attention: {dim: d, heads: heads, causal: true}
      - mlp: {dim: d, hidden: hidden_size, activation: silu, gated: true}
  - rmsnorm: {dim: d}
  - lm_head: {dim: d, vocab: vocab}
mtp:
  depth: 2
  layers:
    - rmsnorm: {dim: d}
    - linear: {dim: d, out: d, bias: false}
    - rmsnorm: {dim: d}
    - attention: {dim: d, heads: HEADS, causal: true}
    - mlp: {dim: d, hidden: hidden_size, activation: silu, gated: true}
"""


def block_spec(d: int, n: int, b: int, layer: str):
    """Token ids of n tokens x b sequences, embedded at width d, through one RMSNorm + `layer`
    block (a layer's YAML flow mapping, `mamba: {...}`)."""
    import symcost

    return symcost.loads(f"name: m\ndims: {{seq_len: {n}, batch: {b}}}\nlayers:\n  - embedding: {{vocab: 7, dim: {d}}}\n"
                         f"  - repeat: 1\n    layers:\n      - rmsnorm: {{dim: {d}}}\n      - {layer}\n")


def cache_bytes(cache) -> int:
    """Bytes a transformers cache holds: every layer's tensors (keys, values, an indexer's keys) and the tensors of
    its state dicts (a linear layer's conv inputs and recurrent state, DeepSeek-V4's compressor buffers), each
    tensor once (DeepSeek-V4's values are its keys), its token counters aside; MiniMax's linear states; xLSTM's
    recurrent states."""
    import torch

    held, seen = 0, set()
    for layer in getattr(cache, "layers", ()):
        for value in vars(layer).values():
            for t in value.values() if isinstance(value, dict) else (value,):
                if isinstance(t, torch.Tensor) and t.dim() and id(t) not in seen:
                    seen.add(id(t))
                    held += t.numel() * t.element_size()
    # MiniMax's cache keeps its lightning layers' states in a list of its own, xLSTM's in a dict of tuples
    states = [*getattr(cache, "linear_cache", ()),
              *(t for kept in getattr(cache, "rnn_state", {}).values() for t in kept)]
    return held + sum(t.numel() * t.element_size() for t in states if isinstance(t, torch.Tensor))


def kernel_minus_pytorch(d: int, n: int, batch: int, layer: str) -> int:
    """Forward FLOPs of the one layer of a block_spec under `kernel` less those under `pytorch`."""
    import symcost

    s = block_spec(d, n, batch, layer)
    kind = layer.split(":")[0]
    rule = lambda convention: next(v["forward"] for node, v in symcost.evaluate(symcost.derive(s, convention))
                                   .components if node.kind == kind)
    return rule("kernel") - rule("pytorch")


def assert_reference_matches(spec, n: int, kind: str | None = None):
    """The reference build of `spec` (n tokens) against its formulas on the CPU: every count forward and backward,
    the bytes saved for backward in fp32 and bf16, and a decode step after contexts 0 and n (its FLOPs and the
    cache's bytes); returns the verify row of the layer of `kind` (for its parameters), if one is named."""
    import symcost
    from symcost.evaluate import dim_values
    from symcost.measure.reference import measure_decode

    report = symcost.verify(spec, backward=True, device="cpu")
    assert report.match, [(row.path, row.symbolic, row.measured) for row in report.rows]
    for dtype in ("fp32", "bf16"):
        assert symcost.verify_memory(spec, dtype=dtype).match
    step = symcost.derive(spec, decode=True)
    for context in (0, n):
        at = dim_values(step, {"context": context})
        measured = measure_decode(step, at, context, device="cpu")
        assert measured.forward_total == symcost.evaluate(step, {"context": context}).total["forward"]
        assert measured.cache_bytes == 4 * int(step.raw_total.cache.xreplace(at))
    return next(row for row in report.rows if row.kind == kind) if kind else None


def measured_layer(layer, x):
    """FlopCounterMode's forward and backward counts of a layer (transformers' own) run on x, the bytes of
    the distinct storages its forward saves (parameters aside), and its parameters."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from symcost.measure.saved import Ledger

    ledger = Ledger(layer)
    with FlopCounterMode(display=False) as forward:
        with torch.autograd.graph.saved_tensors_hooks(lambda t: ledger.add(t, "layer") or t, lambda t: t):
            out = layer(x)
    with FlopCounterMode(display=False) as backward:
        out.sum().backward()
    return (sum(p.numel() for p in layer.parameters()), forward.get_total_flops(), backward.get_total_flops(),
            ledger.per_path["layer"])


def assert_prefill_and_step_match(model, spec, batch: int, n: int, vocab: int, cache=None,
                                  held=lambda model: 0) -> None:
    """A prompt of n tokens, then one decode step, through transformers' `model` (fp32, on the CPU, no gradients):
    the cache after each holds exactly the bytes the spec's formulas say, and FlopCounterMode's counts of both
    equal its forward FLOPs. `cache`: one to pass in, for a model that does not return its own; `held`: the
    bytes a model keeps on its modules instead (RecurrentGemma's recurrent states)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    import symcost
    from symcost.evaluate import dim_values

    full, step = symcost.derive(spec), symcost.derive(spec, decode=True)
    with torch.no_grad(), FlopCounterMode(display=False) as prefill:
        out = model(torch.randint(0, vocab, (batch, n)), use_cache=True, **({"cache": cache} if cache else {}))
    kept = cache or out.get("past_key_values", out.get("cache"))  # Mamba's output names it `cache`
    at = {"batch": batch, "seq_len": n}
    assert cache_bytes(kept) + held(model) == 4 * int(full.raw_total.cache.xreplace(dim_values(full, at)))
    assert prefill.get_total_flops() == symcost.evaluate(full, at).total["forward"]
    with torch.no_grad(), FlopCounterMode(display=False) as one:
        model(torch.randint(0, vocab, (batch, 1)), cache=kept, use_cache=True)
    at = {"batch": batch, "context": n}
    assert cache_bytes(kept) + held(model) == 4 * int(step.raw_total.cache.xreplace(dim_values(step, at)))
    assert one.get_total_flops() == symcost.evaluate(step, at).total["forward"]


@pytest.fixture
def cli():
    """Run `symcost ARGS…` in-process; returns click's Result (exit_code, stdout, stderr)."""
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(main, [str(a) for a in args], catch_exceptions=False)

    return run


@pytest.fixture
def write(tmp_path):
    """Write a spec file and return its path."""

    def _write(text: str, name: str = "spec.yaml") -> str:
        p = tmp_path / name
        p.write_text(text)
        return str(p)

    return _write


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path_factory, monkeypatch):
    """eval's cache of derived forms goes to a directory of the test session, not the user's."""
    monkeypatch.setenv("SYMCOST_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "symcost-cache"))


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem):
    """A test that reaches an optional extra (torch, transformers, SciPy, matplotlib) skips, naming
    it, in a venv without that extra, so the suite runs there too; where the extra is installed the
    same error fails the test as any other."""
    from symcost.extras import MissingExtra

    try:
        return (yield)
    except MissingExtra as e:
        if importlib.util.find_spec(e.module.split(".")[0]) is None:
            pytest.skip(str(e))
        raise
    except ModuleNotFoundError as e:
        if e.name in OPTIONAL and importlib.util.find_spec(e.name) is None:
            pytest.skip(f"needs {e.name}, an optional extra not installed here")
        raise


OPTIONAL = {"torch", "transformers", "scipy", "matplotlib", "pandas", "selenium", "peft", "bitsandbytes"}


def tracked_peak(model, inputs: dict) -> int:
    """The CPU peak of one training step (forward, cross-entropy, backward, Adam over the trainable
    parameters) by PyTorch's MemTracker, after a first step made the optimizer's states. MemTracker
    hooks every parameter's gradient; a frozen one has none, so its hooks are skipped."""
    import torch
    from torch.distributed._tools.mem_tracker import MemTracker
    from torch.nn import functional as F

    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad])

    def step():
        out = model(**inputs)
        labels = torch.randint(0, out.shape[-1], out.shape[:-1])
        F.cross_entropy(out.float().reshape(-1, out.shape[-1]), labels.reshape(-1)).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    step()  # the optimizer's states exist from the first step on, as in a long run
    tracker = MemTracker()
    tracker.track_external(model, opt, *inputs.values())
    hooks = {name: getattr(torch.Tensor, name) for name in ("register_hook", "register_post_accumulate_grad_hook")}
    for name, real in hooks.items():
        setattr(torch.Tensor, name, lambda t, hook, real=real: real(t, hook) if t.requires_grad else _NoHook())
    try:
        with tracker:
            step()
    finally:
        for name, real in hooks.items():
            setattr(torch.Tensor, name, real)
    return tracker.get_tracker_snapshot("peak")[torch.device("cpu")]["Total"]


class _NoHook:
    def remove(self) -> None:
        pass


def pytest_configure(config):
    config.addinivalue_line("markers", "needs(*modules): skip where one of these optional extras is not installed")
    config.addinivalue_line("markers", "slow: a heavy cross-check (pytest -m 'not slow' leaves it out)")


def pytest_collection_modifyitems(items):
    for item in items:
        for mark in item.iter_markers("needs"):
            missing = [m for m in mark.args if importlib.util.find_spec(m) is None]
            if missing:
                item.add_marker(pytest.mark.skip(reason=f"needs {', '.join(missing)}, not installed here"))


def unknown_keys(document, dims=frozenset(), where="") -> set[str]:
    """The keys of `document` neither in the table nor structural, with where they are; the keys of a
    DATA_KEYED mapping are names from the input (dims, parts, stages), and a sweep's point names its
    `dims` (the spec's), so neither is vocabulary."""
    from symcost.metrics import BY_NAME, DATA_KEYED, STRUCTURE

    out = set()
    if isinstance(document, list):
        for item in document:
            out |= unknown_keys(item, dims, f"{where}[]")
    elif isinstance(document, dict):
        data = where.rsplit("/", 1)[-1] in DATA_KEYED
        for key, value in document.items():
            if not data and key not in BY_NAME and key not in STRUCTURE and key not in dims:
                out.add(f"{where}/{key}")
            out |= unknown_keys(value, dims, f"{where}/{key}")
    return out
