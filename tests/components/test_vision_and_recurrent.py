"""Convolutions, pooling, residual blocks, recurrent layers and vision transformers:
published counts computed here by hand, PyTorch's own modules as a second opinion, and
every option verified at drawn sizes (odd image sizes included, so floors are exercised)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import symcost
from conftest import arch

torch = pytest.importorskip("torch")


def evaluation(name, **sizes):
    return symcost.evaluate(symcost.derive(symcost.load(arch(name))), sizes)


def test_resnet50_params():
    # He et al. 2016 / torchvision resnet50: conv biases none, BatchNorm weight + bias per channel
    def bottleneck(c_in, width, projection):
        convs = c_in * width + 9 * width * width + width * 4 * width
        norms = 2 * (width + width + 4 * width)
        shortcut = c_in * 4 * width + 2 * 4 * width if projection else 0
        return convs + norms + shortcut

    stem = 3 * 64 * 49 + 2 * 64
    stages = 0
    c_in = 64
    for width, blocks in ((64, 3), (128, 4), (256, 6), (512, 3)):
        stages += bottleneck(c_in, width, True) + (blocks - 1) * bottleneck(4 * width, width, False)
        c_in = 4 * width
    fc = 2048 * 1000 + 1000
    assert evaluation("resnet50").total["params"] == stem + stages + fc == 25_557_032


def test_vit_b16_params():
    d, L, ff, patches = 768, 12, 3072, (224 // 16) ** 2
    patch_embedding = 3 * 16 * 16 * d + d
    block = 2 * 2 * d + 4 * (d * d + d) + (d * ff + ff) + (ff * d + d)  # 2 LayerNorms, q k v o, MLP
    head = 2 * d + d * 1000 + 1000  # final LayerNorm, classifier
    total = patch_embedding + d + (patches + 1) * d + L * block + head  # + class token, positions
    assert evaluation("vit_b16").total["params"] == total == 86_567_656


def test_lstm_language_model_params():
    V, e, h = 10000, 650, 650
    lstm = torch.nn.LSTM(e, h, num_layers=2)  # PyTorch's own count, as a second opinion
    expected = V * e + sum(p.numel() for p in lstm.parameters()) + h * V + V
    assert evaluation("lstm").total["params"] == expected == 19_780_400


def test_mlp_flops_are_twice_the_weights():
    e = evaluation("mlp")
    weights = 784 * 512 + 512 * 512 + 512 * 10
    assert e.total["params"] == weights + 512 + 512 + 10
    assert e.total["forward"] == 2 * weights * 128  # batch 128, one vector each
    # the first layer reads raw pixels: its backward is the weight gradient only
    assert e.total["backward"] == 2 * e.total["forward"] - 2 * 784 * 512 * 128


def test_a_3x3_conv_at_56x56_uses_each_weight_3136_times():
    e = evaluation("resnet50")
    uses = {node.path: e.reuse(v) for node, v in e.components}
    assert uses["layers/4/residual/3/conv2d"] == 56 * 56  # stage 1's 3x3 conv
    assert uses["layers/0/conv2d"] == 112 * 112  # the stem conv's output


def test_derive_resnet_is_a_closed_form_in_image_size(cli):
    out = cli("derive", "--format", "json", arch("resnet50")).stdout
    import json
    import sympy

    data = json.loads(out)
    forward = sympy.parse_expr(data["flops"]["forward"], local_dict={"floor": sympy.floor})
    assert "image_size" in data["free_symbols"] and "floor" in data["flops"]["forward"]
    values = dict(batch=1, classes=1000, w=64, n1=3, n2=4, n3=6, n4=3)
    for size in (224, 225, 97, 31):  # strides that do and do not divide evenly
        assert forward.subs(values | {"image_size": size}) == evaluation("resnet50", image_size=size).total["forward"]
    assert "batch*image_size**2" in data["leading"]["image_size"]["flops"]["forward"]


CONV = """\
name: c
dims: {{image_size: {size}, batch: {batch}}}
layers:
  - conv2d: {{dim: {c_in}, out: {c_out}, kernel: {k}, stride: {s}, padding: {p}, dilation: {d}, groups: {g}, bias: {bias}}}
  - {pool}
  - activation: {{function: relu}}
  - batchnorm: {{dim: {c_out}}}
  - conv2d: {{dim: {c_out}, out: 3, kernel: 1}}
"""


@settings(max_examples=60, deadline=None, derandomize=True)
@given(size=st.integers(1, 23), batch=st.integers(1, 3), groups=st.integers(1, 3), c_in=st.integers(1, 3),
       c_out=st.integers(1, 3), k=st.integers(1, 5), s=st.integers(1, 3), p=st.integers(0, 2), d=st.integers(1, 2),
       bias=st.booleans(), pool=st.sampled_from(["max", "avg", "adaptive"]))
def test_conv2d_options_verify(size, batch, groups, c_in, c_out, k, s, p, d, bias, pool):
    out = (size + 2 * p - d * (k - 1) - 1) // s + 1
    if out < 2:
        return  # covered by test_conv_that_does_not_fit
    pool_layer = "adaptive_pool: {function: avg, size: 1}" if pool == "adaptive" else f"pool: {{function: {pool}, kernel: 2}}"
    text = CONV.format(size=size, batch=batch, c_in=c_in * groups, c_out=c_out * groups, k=k, s=s, p=p, d=d, g=groups,
                       bias=str(bias).lower(), pool=pool_layer)
    report = symcost.verify(symcost.loads(text), backward=True, device="cpu")
    assert report.match, [(r.path, r.symbolic, r.measured) for r in report.rows]


def test_first_conv_backward_is_its_weight_gradient():
    text = CONV.format(size=9, batch=2, c_in=3, c_out=4, k=3, s=1, p=1, d=1, g=1, bias="true", pool="activation: {}")
    e = symcost.evaluate(symcost.derive(symcost.loads(text)))
    first = e.components[0][1]
    assert first["backward"] == first["forward"] == 2 * 2 * 4 * 3 * 9 * 9 * 9  # 2 x b x out x in x k² x 9x9


def test_grouped_conv_weight_gradient_follows_the_counter():
    # NB: FlopCounterMode's weight-gradient formula ignores groups (groups x forward); `full` does not.
    text = CONV.format(size=8, batch=1, c_in=4, c_out=4, k=3, s=1, p=1, d=1, g=4, bias="false", pool="activation: {}")
    spec = symcost.loads(text)
    pytorch = symcost.evaluate(symcost.derive(spec)).components[0][1]
    full = symcost.evaluate(symcost.derive(spec, "full")).components[0][1]
    assert pytorch["backward"] == 4 * pytorch["forward"]  # raw input: weight gradient only, x groups
    assert full["backward"] == full["forward"]
    assert symcost.verify(spec, backward=True, device="cpu").match


@settings(max_examples=40, deadline=None, derandomize=True)
@given(kind=st.sampled_from(["rnn", "lstm", "gru"]), dim=st.integers(1, 5), hidden=st.integers(1, 5),
       layers=st.integers(1, 3), bidirectional=st.booleans(), bias=st.booleans(), seq_len=st.integers(1, 6),
       batch=st.integers(1, 3), embedded=st.booleans(), conv1d=st.booleans())
def test_recurrent_options_verify(kind, dim, hidden, layers, bidirectional, bias, seq_len, batch, embedded, conv1d):
    head = f"  - embedding: {{vocab: 7, dim: {dim}}}\n" if embedded else ""
    if conv1d:
        head += f"  - conv1d: {{dim: {dim}, out: {dim}, kernel: 1}}\n"
    flags = f"bidirectional: {str(bidirectional).lower()}, bias: {str(bias).lower()}"
    text = (f"name: r\ndims: {{seq_len: {seq_len}, batch: {batch}}}\nlayers:\n{head}"
            f"  - {kind}: {{dim: {dim}, hidden: {hidden}, num_layers: {layers}, {flags}}}\n")
    spec = symcost.loads(text)
    report = symcost.verify(spec, backward=True, device="cpu")
    assert report.match, [(r.path, r.symbolic, r.measured) for r in report.rows]
    reference = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind](
        dim, hidden, num_layers=layers, bidirectional=bidirectional, bias=bias)
    row = next(r for r in report.rows if r.kind == kind)
    assert row.symbolic["params"] == sum(p.numel() for p in reference.parameters())


@pytest.mark.parametrize(
    "layers, path, fragment",
    [
        ("  - conv2d: {dim: 3, out: 4, kernel: 9}\n", "layers.0.conv2d.kernel", "does not fit an input of 5x5"),
        ("  - conv2d: {dim: 3, out: 4, kernel: 3, groups: 2}\n", "layers.0.conv2d.groups", "2 groups must divide"),
        ("  - conv2d: {dim: 3, out: 4, kernel: 1}\n  - pool: {kernel: 2, padding: 2}\n", "layers.1.pool.padding",
         "exceeds half the kernel"),
        ("  - pool: {kernel: 2}\n", "layers.0.pool", "width is unknown"),
        ("  - attention: {dim: 3, heads: 1}\n", "layers.0.attention", "needs a token stream"),
        ("  - conv2d: {dim: 3, out: 3, kernel: 1}\n  - flatten: {}\n  - conv2d: {dim: 75, out: 4, kernel: 1}\n",
         "layers.2.conv2d", "needs an image stream"),
        ("  - flatten: {}\n", "layers.0.flatten", "width is unknown"),
        ("  - conv2d: {dim: 3, out: 3, kernel: 1}\n  - residual:\n      - conv2d: {dim: 3, out: 4, kernel: 1}\n",
         "layers.1.residual.shortcut", "the block gives (4, 5, 5) but the shortcut (3, 5, 5)"),
    ],
)
def test_image_errors(cli, write, layers, path, fragment):
    result = cli("eval", write(f"name: e\ndims: {{image_size: 5}}\nlayers:\n{layers}"))
    assert result.exit_code == 2, result.stdout
    assert f": {path}: " in result.stderr and fragment in result.stderr, result.stderr
