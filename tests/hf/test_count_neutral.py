"""Real configs refused before over fields that change no count now import (the JSON alone is read,
so no transformers here): each variant equals the published file's import, which tests/hf/
test_hf_configs.py proves exact against transformers; a value that would change the model is still
refused in one line naming the field."""

import json

import pytest

import symcost
from published import DATA
from symcost.hf import convert


def config(name: str) -> dict:
    return json.loads((DATA / f"{name}.json").read_text())


def totals(data: dict) -> dict:
    return symcost.evaluate(convert(data).spec()).total


@pytest.mark.parametrize("name, change", [
    ("Qwen2-7B", {"use_mrope": False}),  # Qwen2.5's text configs
    ("gpt_bigcode-santacoder", {"pad_key_length": True}),  # StarCoder's
    ("clip-ViT-B-32", {"text_config_dict": {"hidden_size": 512, "num_hidden_layers": 12, "vocab_size": 49408},
                       "vision_config_dict": {"hidden_size": 768, "patch_size": 32}}),  # openai/clip-vit-base-patch32's
])
def test_a_count_neutral_field_imports_to_the_same_counts(name, change):
    data = config(name)
    for key, value in change.items():  # the _dict holds values its _config has (the test's own check)
        assert not isinstance(value, dict) or all(data[key.removesuffix("_dict")][k] == v for k, v in value.items())
    assert totals(data | change) == totals(data)


@pytest.mark.parametrize("name, change, message", [
    ("Qwen2-7B", {"use_mrope": True}, "use_mrope: multimodal rotary positions change no count, but they are a "
     "vision-language model's, whose vision tower this config does not describe; import the model's text config"),
    ("clip-ViT-B-32", {"text_config_dict": {"hidden_size": 1024}}, "text_config_dict: hidden_size 1024 differs from "
     "text_config.hidden_size 512; transformers builds the model from this one's"),
])
def test_a_value_that_changes_the_model_is_refused_naming_the_field(name, change, message):
    with pytest.raises(symcost.SpecError) as e:
        convert(config(name) | change)
    assert str(e.value) == f"config.json: {message}"


def test_a_model_type_read_as_the_family_its_architectures_names(cli, tmp_path):
    """Kimi-K2 ships DeepSeek-V3's architecture (architectures: DeepseekV3ForCausalLM) under
    model_type kimi_k2: read as deepseek_v3, said on stderr and in the spec's header."""
    r1 = config("DeepSeek-R1")
    k2 = tmp_path / "config.json"
    k2.write_text(json.dumps(r1 | {"model_type": "kimi_k2"}))
    out = cli("import-hf", k2, "-o", tmp_path / "k2.yaml")
    note = ("model_type 'kimi_k2' is not a family symcost knows; read as deepseek_v3, the family of architectures[0] "
            "DeepseekV3ForCausalLM")
    assert out.exit_code == 0 and out.stderr.startswith(f"note: {note}\n")
    assert "# NB: model_type 'kimi_k2' is not a family symcost knows" in (tmp_path / "k2.yaml").read_text()
    assert symcost.evaluate(str(tmp_path / "k2.yaml")).total == totals(r1)
    k2.write_text(json.dumps(r1 | {"model_type": "kimi_k2", "architectures": ["KimiK2Model"]}))
    unknown = cli("import-hf", k2)  # a class of no supported family: refused as before
    assert unknown.exit_code == 2 and "model_type: 'kimi_k2' is not supported" in unknown.stderr


@pytest.mark.parametrize("where, data, name", [
    ("Mixtral-8x7B-v0.1.json", {}, "Mixtral-8x7B-v0.1"),  # the file's name
    ("Meta-Llama-3-8B/config.json", {}, "Meta-Llama-3-8B"),  # a model directory's
    ("x/config.json", {"_name_or_path": "meta-llama/Meta-Llama-3-8B"}, "meta-llama-Meta-Llama-3-8B"),
    ("config.json", {}, "mixtral"),  # nothing names it: the family
])
def test_an_imported_spec_is_named_after_the_model(where, data, name):
    imported = convert(config("Mixtral-8x7B-v0.1") | data, source=where)
    assert imported.spec().name == name  # before: "mixtral" for each of the first two


def test_a_long_context_decoder_is_imported_at_a_stated_working_length():
    """Llama-3.1 holds 131,072 positions: the spec's seq_len is 4,096, and says why (before: a
    131,072-token pass, silently)."""
    text = convert(config("Llama-3.1-8B-Instruct")).yaml
    assert "  seq_len: 4096                       # a 4096-token pass (max_position_embeddings 131,072 is longer)" \
        in text.splitlines()
    short = convert(config("Llama-2-7b-hf")).yaml  # 4,096 positions: one full-context pass, as before
    assert "  seq_len: 4096                       # max_position_embeddings: one full-context pass" in short.splitlines()


QWEN3_MOE = {"architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe", "hidden_size": 64,
             "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "num_hidden_layers": 2,
             "intermediate_size": 128, "moe_intermediate_size": 32, "num_experts": 4, "num_experts_per_tok": 2,
             "vocab_size": 100, "max_position_embeddings": 256}


@pytest.mark.needs("transformers")
def test_a_shared_expert_size_a_family_never_reads_is_listed_and_a_zero_one_it_reads_is_refused():
    """Qwen3-MoE files carry Qwen2-MoE's shared_expert_intermediate_size: 0, which Qwen3-MoE's model never
    reads (no shared expert): imported, listed as ignored, its count transformers' own; on Qwen2-MoE, whose
    model reads it, 0 still builds the shared expert's gate beside an expert of no width: refused, said why."""
    import torch
    import transformers

    data = QWEN3_MOE | {"shared_expert_intermediate_size": 0}
    imported = convert(data)
    assert "shared_expert_intermediate_size" in imported.ignored
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(transformers.Qwen3MoeConfig(**data))
    assert symcost.evaluate(imported.spec()).total["params"] == sum(p.numel() for p in model.parameters())
    with pytest.raises(symcost.SpecError, match="shared_expert_intermediate_size: 0: transformers still builds the "
                                                "shared expert's gate"):
        convert(config("Qwen1.5-MoE-A2.7B") | {"shared_expert_intermediate_size": 0})
    small = {k: v for k, v in QWEN3_MOE.items() if k not in ("architectures", "model_type")}
    with torch.device("meta"):
        qwen2 = transformers.AutoModelForCausalLM.from_config(
            transformers.Qwen2MoeConfig(**small, shared_expert_intermediate_size=0))
    shapes = {n.rsplit(".", 2)[-2]: tuple(p.shape) for n, p in qwen2.named_parameters() if ".0.mlp.shared" in n}
    assert shapes["shared_expert_gate"] == (1, 64) and shapes["down_proj"] == (64, 0)  # the reason given
