"""import-hf reads a config's `quantization_config` (symcost/hf/quantization.py) into a `quantization:`
block: each method transformers loads, as its published checkpoints' configs write it, and one line for
what no format here models."""

import json

import pytest

import symcost
from published import DATA
from symcost.errors import SpecError

LLAMA = json.loads((DATA / "Llama-2-7b-hf.json").read_text())

# quantization_config objects as published checkpoints ship them (TheBloke/Llama-2-7B-GPTQ and -AWQ,
# a bitsandbytes 4-bit save, RedHatAI's FP8-dynamic and NVFP4 (compressed-tensors), DeepSeek-R1's FP8)
PUBLISHED = [
    ({"bits": 4, "group_size": 128, "damp_percent": 0.01, "desc_act": False, "sym": True, "true_sequential": True,
      "model_name_or_path": None, "model_file_base_name": "model", "quant_method": "gptq"},
     {"format": "gptq", "bits": 4, "group": 128}),
    ({"quant_method": "awq", "zero_point": True, "group_size": 128, "bits": 4, "version": "gemm"},
     {"format": "awq", "group": 128}),
    ({"quant_method": "bitsandbytes", "load_in_4bit": True, "bnb_4bit_quant_type": "nf4",
      "bnb_4bit_use_double_quant": True, "bnb_4bit_compute_dtype": "bfloat16", "llm_int8_skip_modules": None},
     {"format": "nf4"}),
    ({"quant_method": "compressed-tensors", "format": "float-quantized", "ignore": ["lm_head"],
      "config_groups": {"group_0": {"targets": ["Linear"], "weights": {"num_bits": 8, "type": "float",
                                                                        "strategy": "channel", "symmetric": True},
                                    "input_activations": {"num_bits": 8, "type": "float", "dynamic": True}}}},
     {"format": "fp8-channel"}),
    ({"quant_method": "compressed-tensors", "format": "nvfp4-pack-quantized", "ignore": ["lm_head"],
      "config_groups": {"group_0": {"targets": ["Linear"], "weights": {
          "num_bits": 4, "type": "float", "strategy": "tensor_group", "group_size": 16}}}},
     {"format": "nvfp4"}),
    ({"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8", "weight_block_size": [128, 128]},
     {"format": "fp8-block"}),
    ({"quant_method": "compressed-tensors", "format": "pack-quantized", "ignore": ["lm_head"],  # a W4A16 recipe
      "config_groups": {"group_0": {"targets": ["Linear"], "weights": {
          "num_bits": 4, "type": "int", "strategy": "group", "group_size": 128, "symmetric": True}}}},
     {"format": "int4", "group": 128}),
]


@pytest.mark.parametrize("config, block", PUBLISHED, ids=lambda x: x.get("quant_method", "") if "bits" not in x
                         or "quant_method" in x else "")
def test_a_quantization_config_becomes_the_spec_s_block(tmp_path, config, block):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(LLAMA | {"quantization_config": config}))
    spec = symcost.loads(symcost.import_hf(str(path)).yaml)
    assert spec.quantization.model_dump(exclude_defaults=True) == block
    if block["format"] == "gptq":  # and its bytes are what the block gives (tests/core/test_quantization.py)
        assert symcost.memory(spec).numbers["weights_bytes"] == 3_893_862_400


@pytest.mark.slow  # 671B's derivation twice; the quick half imports the same method on Llama above
def test_deepseek_r1_s_published_config_is_stored_in_fp8_blocks():
    """DeepSeek-R1's config.json (tests/data/hf) ships FP8 in 128 x 128 blocks: the import says so, and
    every MLA and expert linear takes a byte a weight and an fp32 scale a block."""
    spec = symcost.loads(symcost.import_hf(str(DATA / "DeepSeek-R1.json")).yaml)
    assert spec.quantization.format == "fp8-block"
    weights = symcost.memory(spec).numbers["weights_bytes"]
    bf16 = symcost.memory(symcost.loads(symcost.import_hf(str(DATA / "DeepSeek-R1.json")).yaml.rsplit(
        "quantization:", 1)[0])).numbers["weights_bytes"]
    assert weights < bf16 * 0.52  # a byte where bf16 takes two, the embeddings, head and norms in bf16


@pytest.mark.parametrize("config, message", [
    ({"quant_method": "hqq"}, "quant_method 'hqq': not a method symcost models"),
    ({"quant_method": "gptq", "bits": 4, "group_size": 128, "checkpoint_format": "gptq_v2"}, "checkpoint_format"),
    ({"quant_method": "awq", "bits": 4, "version": "gemv"}, "GEMM packing"),
    ({"quant_method": "bitsandbytes", "load_in_4bit": True, "llm_int8_skip_modules": None,
      "modules_to_not_convert": ["mlp.down_proj"]}, "keeps mlp.down_proj in 16 bits"),
    ({"quant_method": "fp8", "weight_block_size": [64, 64]}, "weight_block_size [64, 64]"),
    ({"quant_method": "gptq", "bits": 3, "group_size": 128}, "quantization.bits"),
    ({"quant_method": "mxfp4"}, "quantization.which: experts: no linear"),
    ({"quant_method": "compressed-tensors", "format": "pack-quantized", "ignore": ["lm_head"],
      "config_groups": {"group_0": {"weights": {"num_bits": 4, "type": "int", "strategy": "group", "group_size": 128,
                                                "symmetric": False}}}}, "symmetric pack-quantized 4-bit integers"),
    ({"quant_method": "compressed-tensors", "format": "pack-quantized", "ignore": ["lm_head", "re:.*self_attn.*"],
      "config_groups": {"group_0": {"weights": {"num_bits": 4, "type": "int", "strategy": "group", "group_size": 128,
                                                "symmetric": True}}}}, r"keeps re:.\*self_attn.\* in 16 bits"),
])
def test_what_import_hf_cannot_store_is_one_line(tmp_path, config, message):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(LLAMA | {"quantization_config": config}, indent=2))
    with pytest.raises(SpecError, match=message.replace("[", r"\[")):
        symcost.loads(symcost.import_hf(str(path)).yaml)
