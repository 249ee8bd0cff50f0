"""Multi-token-prediction modules that transformers does not build (GLM-4.5's, Qwen3-Next's, Qwen3.5's and ERNIE 4.5's;
DeepSeek's in tests/core/test_quantization.py, against R1's published tensors): imported as the spec's `mtp`, and
equal to the module assembled from transformers' own layer classes as the checkpoints name its tensors — two norms
over the main model's hidden state and the next token's embedding, a 2·d → d projection, one decoder layer of the
family (an MoE one), a last norm, then the model's own head (public listings of `model.layers.92.{hnorm, enorm,
eh_proj, shared_head.norm}` for GLM-4.5 and `mtp.{pre_fc_norm_hidden, pre_fc_norm_embedding, fc, layers.0, norm}`
for Qwen3-Next and Qwen3.5); ERNIE 4.5's `model.{mtp_hidden_norm, mtp_emb_norm, mtp_linear_proj, mtp_block}.0`
(the names loaders of its checkpoints, llama.cpp's and SGLang's, read): its block the decoder layer at index 0
(dense, below moe_layer_start_index) and no norm of its own, the model's final one again. Parameters at the
published sizes on meta; forward FLOPs at a small size on the CPU."""

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
    "ernie4_5_moe": dict(hidden_size=2560, num_hidden_layers=28, num_attention_heads=20, num_key_value_heads=4,
                         intermediate_size=12288, moe_intermediate_size=1536, moe_num_experts=64, moe_k=6,
                         moe_num_shared_experts=2, moe_layer_start_index=1, vocab_size=103424,
                         tie_word_embeddings=True, use_bias=False, num_nextn_predict_layers=1),
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
    "ernie4_5_moe": dict(hidden_size=64, num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2,
                         intermediate_size=96, moe_intermediate_size=32, moe_num_experts=4, moe_k=2,
                         moe_num_shared_experts=1, moe_layer_start_index=1, vocab_size=500,
                         num_nextn_predict_layers=1),
}
CLASSES = {"glm4_moe": ("Glm4MoeConfig", "glm4_moe", "Glm4Moe", "RotaryEmbedding"),
           "qwen3_next": ("Qwen3NextConfig", "qwen3_next", "Qwen3Next", "RotaryEmbedding"),
           "qwen3_5_text": ("Qwen3_5TextConfig", "qwen3_5", "Qwen3_5", "TextRotaryEmbedding"),
           "ernie4_5_moe": ("Ernie4_5_MoeConfig", "ernie4_5_moe", "Ernie4_5_Moe", "RotaryEmbedding")}
# the families whose MTP block is the decoder layer at index 0 and whose module ends in the model's own final norm
FIRST_LAYER = ("ernie4_5_moe",)
SHARED = ("head.", "shared_norm.")  # the model's own head and (ERNIE's) final norm: not counted again
MTP_FIELDS = ("num_nextn_predict_layers", "mtp_num_hidden_layers", "mtp_use_dedicated_embeddings")


class Module(torch.nn.Module):
    """The family's MTP module from its own classes: a decoder layer at an MoE full-attention index (the last), or
    ERNIE 4.5's at index 0 and the model's final norm again."""

    def __init__(self, family: str, cfg):
        super().__init__()
        _, module, prefix, rotary = CLASSES[family]
        modeling = importlib.import_module(f"transformers.models.{module}.modeling_{module}")
        cls = lambda name: getattr(modeling, f"{prefix}{name}")
        d, first = cfg.hidden_size, family in FIRST_LAYER
        self.hidden_norm, self.embedding_norm = (cls("RMSNorm")(d, eps=1e-6) for _ in range(2))
        setattr(self, "shared_norm" if first else "own_norm", cls("RMSNorm")(d, eps=1e-6))
        self.norm = self.shared_norm if first else self.own_norm
        self.projection = torch.nn.Linear(2 * d, d, bias=False)
        self.layer = cls("DecoderLayer")(cfg, 0 if first else cfg.num_hidden_layers - 1)
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
    params = sum(p.numel() for name, p in module.named_parameters() if not name.startswith(SHARED))
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
    assert sum(p.numel() for name, p in module.named_parameters() if not name.startswith(SHARED)) == int(
        d.mtp.params.xreplace(dim_values(d)))


@pytest.mark.parametrize("family, change, fragment", [
    ("qwen3_next", {"mtp_num_hidden_layers": 2}, "mtp_num_hidden_layers: 2 MTP layers (one a prediction step) are not "
                                                 "written"),
    ("qwen3_next", {"mtp_use_dedicated_embeddings": True}, "mtp_use_dedicated_embeddings: True is not supported"),
    ("qwen3_next", {"mtp_num_hidden_layers": -1}, "mtp_num_hidden_layers: expected a whole number of modules, got -1"),
    ("glm4_moe", {"num_nextn_predict_layers": 1.5}, "num_nextn_predict_layers: expected a whole number of modules"),
    ("ernie4_5_moe", {"num_nextn_predict_layers": 2}, "num_nextn_predict_layers: 2 MTP modules whose layers are of "
                                                      "different kinds (dense and MoE) are not written"),
])
def test_an_mtp_field_it_cannot_write_is_one_line(family, change, fragment):
    with pytest.raises(symcost.errors.SpecError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        derived(family, SMALL[family] | change)


@pytest.mark.parametrize("family, cls", [("glm4_moe", "Glm4MoeForSequenceClassification"),
                                         ("qwen3_next", "Qwen3NextForSequenceClassification")])
def test_a_classifier_drops_the_mtp_modules_and_says_so(family, cls):
    """They predict through the LM head a classifier does not have (they had made its import fail)."""
    sizes = SMALL[family]
    data = config(family, sizes).to_dict() | {k: v for k, v in sizes.items() if k in MTP_FIELDS}
    text = import_config(data | {"architectures": [cls]}, "config.json")
    assert symcost.derive(symcost.loads(text)).mtp is None
    assert "predict through an LM head, which this model (head: classifier)" in " ".join(
        line.lstrip("# ").strip() for line in text.splitlines() if line.startswith("#"))


def test_a_file_without_mtp_fields_has_no_mtp_block():
    assert derived("qwen3_next", {k: v for k, v in SMALL["qwen3_next"].items() if k not in MTP_FIELDS}).mtp is None


def test_the_shipped_qwen3_next_carries_the_published_mtp_module():
    shipped, imported = symcost.derive(symcost.load(arch("qwen3_next"))), derived("qwen3_next", PUBLISHED["qwen3_next"])
    assert [int(d.mtp.params.xreplace(dim_values(d))) for d in (shipped, imported)] == [1_650_471_424] * 2


# DeepSeek-V4-Flash's released fields (deepseek-ai/DeepSeek-V4-Flash config.json; compress_ratios' 44th entry, 0, is
# its MTP layer's: window-only, as the checkpoint's mtp.0.attn holds no compressor or indexer)
V4_FLASH = {"model_type": "deepseek_v4", "vocab_size": 129280, "hidden_size": 4096, "moe_intermediate_size": 2048,
            "num_hidden_layers": 43, "num_attention_heads": 64, "num_key_value_heads": 1, "head_dim": 512,
            "qk_rope_head_dim": 64, "q_lora_rank": 1024, "o_groups": 8, "o_lora_rank": 1024, "n_routed_experts": 256,
            "n_shared_experts": 1, "num_experts_per_tok": 6, "num_hash_layers": 3, "hc_mult": 4,
            "hc_sinkhorn_iters": 20, "sliding_window": 128, "index_n_heads": 64, "index_head_dim": 128,
            "index_topk": 512, "num_nextn_predict_layers": 1, "compress_ratios": [0, 0] + [4, 128] * 20 + [4, 0]}
V4_SMALL = {"model_type": "deepseek_v4", "vocab_size": 500, "hidden_size": 64, "moe_intermediate_size": 32,
            "num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 16,
            "qk_rope_head_dim": 8, "q_lora_rank": 16, "o_groups": 2, "o_lora_rank": 16, "n_routed_experts": 4,
            "n_shared_experts": 1, "num_experts_per_tok": 2, "num_hash_layers": 1, "hc_mult": 2,
            "hc_sinkhorn_iters": 3, "sliding_window": 8, "index_n_heads": 2, "index_head_dim": 8, "index_topk": 4,
            "num_nextn_predict_layers": 1, "compress_ratios": [0, 4, 128, 0]}


class V4Module(torch.nn.Module):
    """DeepSeek's MTPBlock (its reference inference/model.py) from transformers' DeepSeek-V4 classes: enorm and
    e_proj on the next token's embedding, hnorm and h_proj on each of the main model's streams, their sum through a
    decoder layer (window-only attention, a top-k MoE) at the index after the last, its own hc_head and norm."""

    def __init__(self, fields: dict):
        super().__init__()
        from transformers.models.deepseek_v4 import modeling_deepseek_v4 as v4

        n = fields["num_hidden_layers"]
        cfg = T.DeepseekV4Config(**{k: v for k, v in fields.items() if k not in ("model_type", "compress_ratios")},
                                 compress_rates={})
        cfg.num_hidden_layers, cfg._attn_implementation, d = n + 1, "eager", cfg.hidden_size
        cfg.layer_types = ["sliding_attention"] * (n + 1)  # the MTP layer's, after the model's
        if getattr(cfg, "mlp_layer_types", None) is not None:
            cfg.mlp_layer_types = [*cfg.mlp_layer_types[:n], "moe"]
        self.enorm, self.hnorm, self.norm = (v4.DeepseekV4RMSNorm(d) for _ in range(3))
        self.e_proj, self.h_proj = (torch.nn.Linear(d, d, bias=False) for _ in range(2))
        self.layer = v4.DeepseekV4DecoderLayer(cfg, n)
        self.hc_head = v4.DeepseekV4HyperHead(cfg)
        self.rotary = v4.DeepseekV4RotaryEmbedding(cfg)
        self.head = torch.nn.Linear(d, cfg.vocab_size, bias=False)  # the model's own: not counted again

    def forward(self, streams, embedded, ids):
        x = self.h_proj(self.hnorm(streams)) + self.e_proj(self.enorm(embedded)).unsqueeze(2)
        positions = torch.arange(ids.shape[1])[None]
        rotations = {kind: self.rotary(embedded, position_ids=positions, layer_type=kind)
                     for kind in ("main", "compress")}
        x = self.layer(x, position_embeddings=rotations, position_ids=positions, attention_mask=None, input_ids=ids)
        return self.head(self.norm(self.hc_head(x)))


def v4_derived(fields: dict):
    return symcost.derive(symcost.loads(import_config(fields, "config.json")))


def own(module) -> int:
    return sum(p.numel() for name, p in module.named_parameters() if not name.startswith("head."))


def test_deepseek_v4_flash_s_mtp_module_is_its_reference_block_assembled():
    d = v4_derived(V4_FLASH)
    with torch.device("meta"):
        module = V4Module(V4_FLASH)
    assert int(d.mtp.params.xreplace(dim_values(d))) == own(module) == 6_610_048_635


def test_deepseek_v4_s_mtp_module_s_forward_flops_are_its_block_run():
    from torch.utils.flop_counter import FlopCounterMode

    batch, n, width, streams = 2, 12, V4_SMALL["hidden_size"], V4_SMALL["hc_mult"]
    d = v4_derived(V4_SMALL)
    torch.manual_seed(0)
    module = V4Module(V4_SMALL)
    ids = torch.randint(0, V4_SMALL["vocab_size"], (batch, n))
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(torch.randn(batch, n, streams, width), torch.randn(batch, n, width), ids)
    assert int(d.mtp.forward.xreplace(dim_values(d, {"batch": batch, "seq_len": n}))) == counter.get_total_flops()
    assert int(d.mtp.params.xreplace(dim_values(d))) == own(module)


def test_deepseek_v4_s_mtp_attention_follows_compress_ratios_or_says_what_it_assumed():
    hca = import_config(V4_SMALL | {"compress_ratios": [0, 4, 128, 128]}, "config.json")
    assert "compress: hca_rate" in hca[hca.index("mtp:"):]
    assert "compress:" not in import_config(V4_SMALL, "config.json").split("mtp:")[1]
    text = import_config(V4_SMALL | {"compress_ratios": [0, 4, 128]}, "config.json")
    assert "the MTP modules' attention is written window-only" in text.replace("\n# NB: ", " ").replace("\n#     ", " ")
    with pytest.raises(symcost.errors.SpecError, match="compress_ratios: the MTP modules' entries"):
        v4_derived(V4_SMALL | {"num_nextn_predict_layers": 2, "compress_ratios": [0, 4, 128, 0, 4]})
