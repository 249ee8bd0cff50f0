"""Multi-token-prediction modules that transformers does not build (GLM-4.5's, Qwen3-Next's and Qwen3.5's; DeepSeek's
in tests/core/test_quantization.py, against R1's published tensors): imported as the spec's `mtp`, and equal to the
module assembled from transformers' own layer classes as the checkpoints name its tensors — two norms over the main
model's hidden state and the next token's embedding, a 2·d → d projection, one decoder layer of the family (an MoE
one), a last norm, then the model's own head (public listings of `model.layers.92.{hnorm, enorm, eh_proj,
shared_head.norm}` for GLM-4.5 and `mtp.{pre_fc_norm_hidden, pre_fc_norm_embedding, fc, layers.0, norm}` for
Qwen3-Next and Qwen3.5). Parameters at the published sizes on meta; forward FLOPs at a small size on the CPU."""

import importlib

import pytest

import symcost
from symcost.evaluate import dim_values
from symcost.hf import import_config

from conftest import arch

torch = pytest.importorskip("torch")
T = pytest.importorskip("transformers")

# published files' sizes: zai-org/GLM-4.5-Air's and Qwen/Qwen3-Next-80B-A3B-Instruct's, with their MTP fields
PUBLISHED = {
    "glm4_moe": dict(hidden_size=4096, num_hidden_layers=46, num_attention_heads=96, num_key_value_heads=8,
                     head_dim=128, intermediate_size=10944, moe_intermediate_size=1408, n_routed_experts=128,
                     num_experts_per_tok=8, n_shared_experts=1, first_k_dense_replace=1, vocab_size=151552,
                     partial_rotary_factor=0.5, use_qk_norm=False, attention_bias=True, tie_word_embeddings=False,
                     num_nextn_predict_layers=1),
    "qwen3_next": dict(hidden_size=2048, num_hidden_layers=48, num_attention_heads=16, num_key_value_heads=2,
                       head_dim=256, linear_num_key_heads=16, linear_num_value_heads=32, linear_key_head_dim=128,
                       linear_value_head_dim=128, num_experts=512, num_experts_per_tok=10, moe_intermediate_size=512,
                       shared_expert_intermediate_size=512, intermediate_size=5120, vocab_size=151936,
                       tie_word_embeddings=False, mtp_num_hidden_layers=1, mtp_use_dedicated_embeddings=False),
}
SMALL = {
    "glm4_moe": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                     intermediate_size=96, moe_intermediate_size=32, n_routed_experts=4, num_experts_per_tok=2,
                     n_shared_experts=1, first_k_dense_replace=1, n_group=1, topk_group=1, vocab_size=500,
                     partial_rotary_factor=0.5, attention_bias=True, num_nextn_predict_layers=1),
    "qwen3_next": dict(hidden_size=64, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                       linear_num_key_heads=2, linear_num_value_heads=4, linear_key_head_dim=8,
                       linear_value_head_dim=8, num_experts=4, num_experts_per_tok=2, moe_intermediate_size=32,
                       shared_expert_intermediate_size=48, intermediate_size=96, vocab_size=500,
                       mtp_num_hidden_layers=1, mtp_use_dedicated_embeddings=False),
    "qwen3_5_text": dict(hidden_size=64, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                         linear_num_key_heads=2, linear_num_value_heads=4, linear_key_head_dim=8,
                         linear_value_head_dim=8, intermediate_size=96, vocab_size=500, mtp_num_hidden_layers=1,
                         mtp_use_dedicated_embeddings=False),
}
CLASSES = {"glm4_moe": ("Glm4MoeConfig", "glm4_moe", "Glm4Moe", "RotaryEmbedding"),
           "qwen3_next": ("Qwen3NextConfig", "qwen3_next", "Qwen3Next", "RotaryEmbedding"),
           "qwen3_5_text": ("Qwen3_5TextConfig", "qwen3_5", "Qwen3_5", "TextRotaryEmbedding")}
MTP_FIELDS = ("num_nextn_predict_layers", "mtp_num_hidden_layers", "mtp_use_dedicated_embeddings")


class Module(torch.nn.Module):
    """The family's MTP module from its own classes: a decoder layer at an MoE full-attention index (the last)."""

    def __init__(self, family: str, cfg):
        super().__init__()
        _, module, prefix, rotary = CLASSES[family]
        modeling = importlib.import_module(f"transformers.models.{module}.modeling_{module}")
        cls = lambda name: getattr(modeling, f"{prefix}{name}")
        d = cfg.hidden_size
        self.hidden_norm, self.embedding_norm, self.norm = (cls("RMSNorm")(d, eps=1e-6) for _ in range(3))
        self.projection = torch.nn.Linear(2 * d, d, bias=False)
        self.layer = cls("DecoderLayer")(cfg, cfg.num_hidden_layers - 1)
        self.rotary = cls(rotary)(config=cfg)
        self.head = torch.nn.Linear(d, cfg.vocab_size, bias=False)  # the model's own: not counted again

    def forward(self, hidden, embedded):
        x = self.projection(torch.cat([self.hidden_norm(hidden), self.embedding_norm(embedded)], dim=-1))
        positions = torch.arange(x.shape[1])[None]
        x = self.layer(x, position_embeddings=self.rotary(x, positions), attention_mask=None, position_ids=positions)
        return self.head(self.norm(x[0] if isinstance(x, tuple) else x))


def config(family: str, sizes: dict):
    cfg = getattr(T, CLASSES[family][0])(**{k: v for k, v in sizes.items() if k not in MTP_FIELDS})
    cfg._attn_implementation = "eager"
    return cfg


def derived(family: str, sizes: dict):
    data = config(family, sizes).to_dict() | {k: v for k, v in sizes.items() if k in MTP_FIELDS}
    return symcost.derive(symcost.loads(import_config(data, f"{family}.json")))


@pytest.mark.parametrize("family", sorted(PUBLISHED))
def test_the_mtp_module_at_the_published_size_is_its_layers_assembled(family):
    d = derived(family, PUBLISHED[family])
    with torch.device("meta"):
        module = Module(family, config(family, PUBLISHED[family]))
    params = sum(p.numel() for name, p in module.named_parameters() if not name.startswith("head."))
    assert int(d.mtp.params.xreplace(dim_values(d))) == params
    assert 0 < params < int(d.total.params.xreplace(dim_values(d))) // 40  # one layer among 46 or 48, and the rest


@pytest.mark.parametrize("family", sorted(SMALL))
def test_the_mtp_module_s_forward_flops_are_its_layers_run(family):
    from torch.utils.flop_counter import FlopCounterMode

    batch, n = 2, 12
    d = derived(family, SMALL[family])
    torch.manual_seed(0)
    module = Module(family, config(family, SMALL[family]))
    width = SMALL[family]["hidden_size"]
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(torch.randn(batch, n, width), torch.randn(batch, n, width))
    assert int(d.mtp.forward.xreplace(dim_values(d, {"batch": batch, "seq_len": n}))) == counter.get_total_flops()
    assert sum(p.numel() for name, p in module.named_parameters() if not name.startswith("head.")) == int(
        d.mtp.params.xreplace(dim_values(d)))


@pytest.mark.parametrize("family, change, fragment", [
    ("qwen3_next", {"mtp_num_hidden_layers": 2}, "mtp_num_hidden_layers: 2 MTP layers (one a prediction step) are not "
                                                 "written"),
    ("qwen3_next", {"mtp_use_dedicated_embeddings": True}, "mtp_use_dedicated_embeddings: True is not supported"),
    ("qwen3_next", {"mtp_num_hidden_layers": -1}, "mtp_num_hidden_layers: expected a whole number of modules, got -1"),
    ("glm4_moe", {"num_nextn_predict_layers": 1.5}, "num_nextn_predict_layers: expected a whole number of modules"),
])
def test_an_mtp_field_it_cannot_write_is_one_line(family, change, fragment):
    with pytest.raises(symcost.errors.SpecError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        derived(family, SMALL[family] | change)


def test_a_file_without_mtp_fields_has_no_mtp_block():
    assert derived("qwen3_next", {k: v for k, v in SMALL["qwen3_next"].items() if k not in MTP_FIELDS}).mtp is None


def test_the_shipped_qwen3_next_carries_the_published_mtp_module():
    shipped, imported = symcost.derive(symcost.load(arch("qwen3_next"))), derived("qwen3_next", PUBLISHED["qwen3_next"])
    assert [int(d.mtp.params.xreplace(dim_values(d))) for d in (shipped, imported)] == [1_650_471_424] * 2
