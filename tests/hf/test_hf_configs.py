"""Real published config.json files (tests/data/hf/, as their model repositories publish them,
legacy and count-neutral fields included): each imports without a refusal, lists what it ignores,
and is exact against the transformers model built from the same file (parameters, active
parameters where it has experts, and forward FLOPs; parameters only where transformers must run
the model on the CPU and the file is too large for it: PARAMS_ONLY), at the published parameter
count."""

import json

import pytest

import symcost

pytest.importorskip("torch")  # verify --hf builds transformers' models
pytest.importorskip("transformers")
from symcost.measure import verify as verification  # noqa: E402
from symcost.measure.verify import verify_hf  # noqa: E402
from published import DATA  # noqa: E402


# file: (parameters of the class its `architectures` names, where the count is published)
COUNTS = {
    "gpt2": (124_439_808, "openai-community/gpt2 (GPT2LMHeadModel, tied head)"),
    "Meta-Llama-3-8B": (8_030_261_248, "meta-llama/Meta-Llama-3-8B model card: 8B"),
    # these two as a public repository's test script embeds them (Python dicts of the Hub's files)
    "Llama-2-7b-hf": (6_738_415_616, "meta-llama/Llama-2-7b-hf: Touvron et al. 2023, Table 1 (7B)"),
    "gemma-2-2b": (2_614_341_888, "google/gemma-2-2b: Gemma Team 2024, Table 2 (2.6B); hidden_act beside "
                                  "hidden_activation, as Gemma 2's files carry them"),
    "gemma-2-9b": (9_241_705_984, "google/gemma-2-9b: Gemma Team 2024, Table 2 (9B); sliding_window_size too"),
    "Mistral-7B-v0.1": (7_241_732_096, "mistralai/Mistral-7B-v0.1: 7.24B"),
    "Mixtral-8x7B-v0.1": (46_702_792_704, "mistralai/Mixtral-8x7B-v0.1: 46.7B"),
    # as a public repository embeds the Hub's files (its config.json, and model.safetensors.index.json: see
    # test_quantization.py): the original implementation's experts_per_token and initial_context_length beside
    # transformers' fields, and an MXFP4 quantization_config
    "gpt-oss-20b": (20_914_757_184, "openai/gpt-oss-20b model card (OpenAI 2025, Table 1): 20.91B total"),
    "Qwen2-7B": (7_615_616_512, "Qwen/Qwen2-7B: 7.62B"),
    "bert-base-uncased": (109_514_298, "BertForMaskedLM: BertModel's 109,482,240 less the pooler, plus the MLM head"),
    "pythia-1.4b": (1_414_647_808, "Biderman et al. 2023, Table 1"),
    "opt-1.3b": (1_315_758_080, "facebook/opt-1.3b: 1.3B"),
    "phi-2": (2_779_683_840, "microsoft/phi-2: 2.78B"),
    "t5-base": (222_903_552, "google-t5/t5-base: 223M"),
    # Megatron-DeepSpeed's training switches (masked_softmax_fusion, skip_bias_add, …) in BLOOM's file,
    # and BLOOM's apply_residual_connection_post_layernorm in Falcon's first ones; transformers reads none
    "bloom-560m": (559_214_592, "bigscience/bloom-560m: 559M"),
    "bloom": (176_247_271_424, "bigscience/bloom model card: 176,247,271,424 parameters (BLOOM-176B)"),
    "falcon-7b-instruct": (6_921_720_704, "tiiuae/falcon-7b-instruct: 7B (multi-query, one norm per layer)"),
    "falcon-40b-instruct": (41_303_293_952, "tiiuae/falcon-40b-instruct: 40B (new_decoder_architecture, 8 kv heads)"),
    # Phi-3's files carry attention_bias (Phi-3's projections have none, whatever it says), GPT-J's
    # `rotary: true` (it always rotates): as a public repository's profiler embeds them (its own "name" key dropped)
    "Phi-3-mini-4k-instruct": (3_821_079_552, "microsoft/Phi-3-mini-4k-instruct: 3.8B (Abdin et al. 2024)"),
    "Phi-3-medium-4k-instruct": (13_960_238_080, "microsoft/Phi-3-medium-4k-instruct: 14B (Abdin et al. 2024)"),
    "gpt-j-6b": (6_050_882_784, "EleutherAI/gpt-j-6b: 6B (GPTJForCausalLM, its head with a bias)"),
    # the next three as a public repository's parameter counter embeds them
    "Llama-3.3-70B-Instruct": (70_553_706_496, "meta-llama/Llama-3.3-70B-Instruct: 70B (Llama 3.1's rope scaling)"),
    "DeepSeek-R1": (671_026_404_352, "deepseek-ai/DeepSeek-R1: 671B, its multi-token-prediction layer aside "
                                     "(DeepSeek-AI 2024, Table 1 of the V3 report)"),
    "DeepSeek-V2.5": (235_741_434_880, "deepseek-ai/DeepSeek-V2.5: 236B total, 21B active (DeepSeek-AI 2024, V2)"),
    # as OpenSearch's model listing embeds it: transformers 3's tie_weights_ still in it
    "msmarco-distilbert-base-tas-b": (66_362_880, "sentence-transformers/msmarco-distilbert-base-tas-b "
                                                  "(DistilBertModel): distilbert-base's 66M"),
    # T5 v1.1's layout (gated-GELU, untied head) in a fine-tune of allenai/tk-instruct-base-def-pos, as a
    # public write-up quotes kevinscaria/joint_tk-instruct-base-def-pos-neg-neut-combined's file; transformers 5
    # ties every T5's head (test_hf.py::test_t5_v1_1_has_an_untied_head_which_transformers_5_ties)
    "joint_tk-instruct-base-def-pos-neg-neut-combined": (
        247_534_848, "t5-v1_1-base's 247.6M less 28 unused vocabulary rows in each table (32,100 of 32,128)"),
    # BigCode's inference-runner setting runner_max_sequence_length in it; field for field as a public
    # repository's tests quote it
    "gpt_bigcode-santacoder": (1_124_886_528, "bigcode/gpt_bigcode-santacoder: 1.1B (Allal et al. 2023)"),
    # every PretrainedConfig field, as transformers 4.30 saved it (ints where 5 wants floats, a
    # "torch.float32" dtype), in weaviate's multi2vec-clip module's metadata
    "clip-ViT-B-32": (151_277_313, "sentence-transformers/clip-ViT-B-32, OpenAI's ViT-B/32 CLIP: 151M"),
    # the next nine field for field as MLC LLM's model presets embed them (mlc-ai/mlc-llm,
    # python/mlc_llm/model/model_preset.py: Python dicts of the Hub's files, keys in its order); Qwen1.5-MoE's
    # fields are also those of its GPTQ release as another public repository quotes it
    "Qwen1.5-MoE-A2.7B": (14_315_784_192, "Qwen/Qwen1.5-MoE-A2.7B: 14.3B total, 2.7B activated"),
    "Qwen3-0.6B": (596_049_920, "Qwen/Qwen3-0.6B: 0.6B (tied head, head_dim 128 beside a 1,024 width)"),
    "gemma-2b": (2_506_172_416, "google/gemma-2b: Gemma Team 2024, Table 2: 524,288,000 embedding "
                                "+ 1,981,884,416 non-embedding parameters; Gemma 1's legacy hidden_act \"gelu\""),
    "gemma-3-1b-it": (999_885_952, "google/gemma-3-1b-it: 1B (Gemma 3's five sliding layers per global one)"),
    "aya-23-8B": (8_028_033_024, "CohereForAI/aya-23-8B: 8B (Cohere's parallel block, logit_scale)"),
    "stablelm-2-zephyr-1_6b": (1_644_515_328, "stabilityai/stablelm-2-zephyr-1_6b: 1.6B (q, k, v biases; rotary "
                                              "on a quarter of each head)"),
    "starcoder2-7b": (7_173_923_840, "bigcode/starcoder2-7b: 7B (its training code's switches beside "
                                     "transformers' fields)"),
    "Llama-3.1-8B-Instruct": (8_030_261_248, "meta-llama/Llama-3.1-8B-Instruct: 8B (Llama 3.1's rope scaling)"),
    "Llama-3.2-1B-Instruct": (1_235_814_400, "meta-llama/Llama-3.2-1B-Instruct: 1.23B (tied head)"),
    # as a public repository keeps it among its test fixtures (an inference engine's)
    "OLMoE-1B-7B-0125-Instruct": (6_919_161_856, "allenai/OLMoE-1B-7B-0125-Instruct: 6.9B total, 1.3B active "
                                                 "(Muennighoff et al. 2024); clip_qkv null"),
    # mamba_ssm's own fields beside transformers' (d_model, n_layer, d_inner, rms_norm, fused_add_norm,
    # pad_vocab_size_multiple, ssm_cfg): the 130m file as a public repository's tests embed it (a Python
    # dict, twice alike), the 2.8b one as a public repository's README quotes it
    "mamba-130m-hf": (129_135_360, "state-spaces/mamba-130m-hf: 130M (Gu and Dao 2023), tied head"),
    # as a public repository's test embeds it, verbatim: Liquid's own names (block_dim, conv_dim, num_heads, …) and
    # intermediate_size 8192 beside block_ff_dim 12288, which its config takes (then x 2/3: 8192 wide)
    "LFM2-1.2B": (1_170_340_608, "LiquidAI/LFM2-1.2B: 1.17B (its card), tied head"),
    "mamba-2.8b-hf": (2_768_345_600, "state-spaces/mamba-2.8b-hf: 2.8B (Gu and Dao 2023), tied head"),
    # as a public repository's test embeds it, verbatim: 23 Mamba-2, 23 MoE and 6 attention blocks
    "NVIDIA-Nemotron-3-Nano-30B-A3B": (31_577_937_344, "nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B: 31.6B total, 3.6B "
                                                       "active with the embeddings (NVIDIA)"),
    # as a public repository's deploy script embeds it (registering the reranker with OpenSearch)
    "bge-reranker-base": (278_044_417, "BAAI/bge-reranker-base: 278M (XLMRobertaForSequenceClassification: "
                                       "RoBERTa's layers, a 250,002-token table, one label)"),
    # the rest as the Hub's own pages of these files show them (each page's text, stored by a search index:
    # whitespace restored as transformers writes it, json.dumps with indent 2, and the file's size in bytes, where
    # the page gives it, checked), with the legacy and foreign fields their families' real files carry
    "samantha-1.1-llama-7b": (6_738_415_616, "cognitivecomputations/samantha-1.1-llama-7b at 1f5c893 (533 bytes), "
                                             "a LLaMA 1 7B: Touvron et al. 2023, Table 2 (6.7B); max_sequence_length"),
    "Marco-Mini-Instruct": (17_250_582_528, "AIDC-AI/Marco-Mini-Instruct: Qwen3-MoE's layout, 256 experts of which "
                                            "8 run, a tied head; qkv_bias and use_qk_norm, which transformers never reads"),
    "gemma-3-4b-it": (4_300_079_472, "as mlx-community/gemma-3-4b-it-bf16 publishes google/gemma-3-4b-it's file: Gemma "
                                     "Team 2025, Table 1 (4B: 417M vision, 3,209M non-embedding); text_config gives "
                                     "only the sizes that differ from Gemma3TextConfig's"),
    "granite-3.0-8b-lab-community": (8_170_868_736, "instructlab/granite-3.0-8b-lab-community: Granite 3.0 8B (8.1B)"),
    "granite-3.1-1b-a400m-instruct": (1_334_628_352, "ibm-granite/granite-3.1-1b-a400m-instruct at 8290d32 (889 bytes): "
                                                     "1.3B total, 400M active"),
    "AMD-OLMo-1B-SFT": (1_176_764_416, "amd/AMD-OLMo-1B-SFT at 5cfb214 (26 lines): OLMo 1B's layout (1.2B)"),
    "OLMo-2-1124-13B": (13_716_198_400, "allenai/OLMo-2-1124-13B at b7add06 (623 bytes, no final newline): 13.7B"),
    "dbrx-instruct": (131_596_523_520, "databricks/dbrx-instruct's first file (auto_map to its own code), as "
                                       "SinclairSchneider/dbrx-instruct-quantization-fixed at 731fe61 holds it (849 "
                                       "bytes): 132B total, 36B active (Databricks 2024)"),
    "dbrx-tiny256-random": (64_365_824, "yujiepan/dbrx-tiny256-random at 57bbc83 (726 bytes): DBRX Instruct's file "
                                        "at width 256 and two layers (a public test model), small enough to run on "
                                        "the CPU"),
    "Jamba-v0.1": (51_570_323_328, "ai21labs/Jamba-v0.1 at 871ab2b (1,310 bytes): 52B total, 12B active (Lieber et "
                                   "al. 2024); AI21's own code's n_ctx, mamba_inner_layernorms and "
                                   "calc_logits_for_entire_prompt"),
    "Jamba-tiny-random": (127_679_344, "ai21labs/Jamba-tiny-random at ff6160d (1,010 bytes): Jamba's layout at width "
                                       "128 (AI21's test model), small enough to run on the CPU"),
    "roberta-base": (124_697_433, "FacebookAI/roberta-base, as snibbles22/roberta-base duplicates it (481 bytes): 125M "
                                  "(RobertaForMaskedLM)"),
    "albert-xxlarge-v2": (206_368_944, "albert/albert-xxlarge-v2 at 84f1846 (710 bytes): one shared layer of width "
                                       "4096; the original ALBERT's down_scale_factor, gap_size, net_structure_type, "
                                       "num_memory_blocks and layers_to_keep"),
    "kobart": (123_859_968, "hyunwoongko/kobart at b000a5e (1,110 bytes): KoBART, 124M (BartModel); transformers 3's "
                            "BART switches (extra_pos_embeddings, normalize_before, …) and num_hidden_layers"),
    "whisper-base-ca": (72_593_920, "softcatala/whisper-base-ca at b1c6013 (994 bytes): Whisper base's layout, a "
                                    "Catalan fine-tune; forced_decoder_ids and num_hidden_layers"),
    "vit-base-patch16-224-in21k": (86_389_248, "google/vit-base-patch16-224-in21k (502 bytes): ViT-Base, 86M "
                                               "(Dosovitskiy et al. 2021, Table 1; ViTModel with its pooler)"),
}

# families whose transformers model reads tensor values as it runs (verification.ON_CPU), in files too
# large for the CPU: verify --hf compares parameters and active parameters on meta and says why forward
# FLOPs were not measured (each family's are exact on the CPU at smaller sizes in test_hf.py, and DBRX's and
# Jamba's from the real test-model files here, dbrx-tiny256-random and Jamba-tiny-random)
PARAMS_ONLY = {"dbrx-instruct", "Jamba-v0.1", "gemma-3-4b-it"}
MOE = {"Mixtral-8x7B-v0.1", "Qwen1.5-MoE-A2.7B", "OLMoE-1B-7B-0125-Instruct", "DeepSeek-V2.5", "DeepSeek-R1",
       "Marco-Mini-Instruct", "granite-3.1-1b-a400m-instruct", "dbrx-instruct", "dbrx-tiny256-random", "Jamba-v0.1",
       "Jamba-tiny-random", "gpt-oss-20b", "NVIDIA-Nemotron-3-Nano-30B-A3B"}
SIZES = {"vit-base-patch16-224-in21k": {"batch": 1}, "gemma-3-4b-it": {"seq_len": 300, "batch": 1}}


def test_every_file_has_a_count():
    assert {p.stem for p in DATA.glob("*.json")} == set(COUNTS)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(COUNTS))
def test_real_configs_import_and_match_transformers(cli, tmp_path, monkeypatch, name):
    path = DATA / f"{name}.json"
    out = tmp_path / "spec.yaml"
    result = cli("import-hf", path, "-o", out)
    assert result.exit_code == 0, result.stderr
    assert result.stderr.startswith("ignored (they change no count): ")
    data = json.loads(path.read_text())
    sizes = SIZES.get(name, {"seq_len": 32, "batch": 1}) | ({"src_len": 24} if data["model_type"] == "t5" else {})
    monkeypatch.setattr(verification, "HF_CPU_PARAMS", 130_000_000)  # the tiny Jamba's 128M and DBRX's 64M, on the CPU
    report = verify_hf(symcost.load(out), data, sizes)
    assert (report.active == report.params) == (name not in MOE), report.active  # experts a token does not run
    assert report.active[0] == report.active[1] or name not in MOE, report.active
    if name in PARAMS_ONLY:
        assert report.forward[1] is None and "reads tensor values as it runs" in report.unmeasured
        assert report.params == (COUNTS[name][0],) * 2 and report.match
        return
    assert report.model == data["architectures"][0]
    assert report.forward[0] == report.forward[1], report.forward
    untied = data["model_type"] == "t5" and data.get("tie_word_embeddings") is False
    theirs = COUNTS[name][0] - (data["vocab_size"] * data["d_model"] if untied else 0)
    assert report.params == (COUNTS[name][0], theirs) and report.match == (not untied), (report.params, report.forward)


def test_dropout_that_training_would_run_is_named_in_the_spec(cli):
    """A dropout probability changes no parameter or FLOP count, but training with it keeps one-byte
    masks that the imported spec (p = 0) leaves out: the spec says so, naming each field above 0."""
    gpt2 = cli("import-hf", DATA / "gpt2.json").stdout
    assert "# NB: the config's dropout (attn_pdrop 0.1, embd_pdrop 0.1, resid_pdrop 0.1) is not written" in gpt2
    assert "summary_first_dropout" not in gpt2.split("name:")[0]  # the double-heads summary: no imported head has it
    assert "dropout" not in cli("import-hf", DATA / "Meta-Llama-3-8B.json").stdout  # attention_dropout 0.0


def test_gemma_1_s_legacy_gelu_is_written_as_the_tanh_form_transformers_runs(cli):
    """Gemma 1's files say hidden_act "gelu"; GemmaConfig replaces it by gelu_pytorch_tanh (the form it
    was trained with), so the spec says gelu_tanh, whose torch build runs that form."""
    spec = cli("import-hf", DATA / "gemma-2b.json").stdout
    assert "activation: gelu_tanh, gated: true" in spec, spec


@pytest.mark.parametrize("name, change, tokens, why", [
    ("DeepSeek-R1", {}, 4096, "(max_position_embeddings 163,840 is longer)"),
    ("DeepSeek-R1", {"max_position_embeddings": 2048}, 2048, "max_position_embeddings: one full-context pass"),
    ("Jamba-tiny-random", {}, 4096, "(max_position_embeddings 262,144 is longer)"),
    ("Jamba-v0.1", {}, 4096, "(no max_position_embeddings)")])  # its n_ctx is AI21's name, which transformers never reads
def test_a_long_context_is_written_as_a_4096_token_pass_that_says_why(cli, tmp_path, name, change, tokens, why):
    """DeepSeek, Jamba and the Mamba-2 hybrids write one pass of at most 4096 tokens (a longer one is
    a --set away); the spec says which it is and why, from the file, and keeps a longer context as max_pos."""
    path = tmp_path / "config.json"
    data = json.loads((DATA / f"{name}.json").read_text()) | change
    path.write_text(json.dumps(data))
    lines = cli("import-hf", path).stdout.splitlines()
    seq_len = next(line for line in lines if "seq_len:" in line)
    assert why in seq_len and seq_len.split("#")[0].split() == ["seq_len:", str(tokens)], seq_len
    longest = [line.split("#")[0].split() for line in lines if "max_pos:" in line]
    assert longest == ([["max_pos:", str(data["max_position_embeddings"])]] if "is longer" in why else [])


def test_verify_hf_of_a_file_too_large_for_the_cpu_compares_parameters_and_says_why(cli, tmp_path):
    """DBRX Instruct's file: transformers' DBRX runs only on the CPU (its experts gather tokens by
    value), and 132B parameters are too many for that; verify --hf compares parameters and active
    ones on meta, exits 0 when they match, and says in text and JSON that the FLOPs were not measured."""
    path, out = DATA / "dbrx-instruct.json", tmp_path / "dbrx.yaml"
    assert cli("import-hf", path, "-o", out).exit_code == 0
    text = cli("verify", out, "--hf", path, "--set", "seq_len=32")
    assert text.exit_code == 0, text.stdout
    assert "36,469,708,800     36,469,708,800   ok" in text.stdout and "MATCH in parameters" in text.stdout
    assert "forward FLOPs not measured: transformers' dbrx reads tensor values" in " ".join(text.stdout.split())
    data = json.loads(cli("verify", out, "--hf", path, "--set", "seq_len=32", "--format", "json").stdout)
    assert data["active_params"] == {"symbolic": 36_469_708_800, "transformers": 36_469_708_800} and data["match"]
    assert data["flops"]["forward"]["transformers"] is None and "at most 50,000,000" in data["flops_not_measured"]


@pytest.mark.slow  # a guard for transformers upgrades: the full suite runs it
@pytest.mark.parametrize("name", sorted(COUNTS))
def test_a_file_re_saved_by_the_installed_transformers_imports_to_the_same_counts(tmp_path, name):
    """The installed transformers' config class reads each published file and saves it again, writing
    every field it now has (Falcon's num_key_value_heads since 5.25, beside num_kv_heads): import-hf
    takes the re-saved file, refusing none of the new fields, and its spec counts what the
    original's does. The one difference is transformers 5's own: it ties every T5's head, so the
    re-saved T5 v1.1 file says tie_word_embeddings true and holds one vocab x d_model table fewer."""
    from symcost.hf import import_config
    from symcost.measure.hf import config_object

    data = json.loads((DATA / f"{name}.json").read_text())
    config_object(data["model_type"], data).save_pretrained(tmp_path)
    re_saved = json.loads((tmp_path / "config.json").read_text())
    totals = [symcost.evaluate(symcost.loads(import_config(d, "config.json"))).total for d in (data, re_saved)]
    untied = data["model_type"] == "t5" and data.get("tie_word_embeddings") is False
    tied_table = data["vocab_size"] * data["d_model"] if untied else 0
    assert totals[1]["params"] == totals[0]["params"] - tied_table == COUNTS[name][0] - tied_table
    assert totals[1]["active_params"] == totals[0]["active_params"] - tied_table
    assert totals[1]["forward"] == totals[0]["forward"] and totals[1]["train"] == totals[0]["train"]


def test_falcon_re_saved_by_transformers_5_25_imports_and_a_contradicting_one_is_refused_in_one_line(cli, tmp_path):
    """The issue's report, as a user meets it: FalconConfig re-saves falcon-7b-instruct's file with
    num_key_value_heads (1: multi-query) beside num_kv_heads (71); import-hf takes it, and refuses, in
    one line with exit status 2, a file whose num_key_value_heads says otherwise."""
    from symcost.measure.hf import config_object

    config_object("falcon", json.loads((DATA / "falcon-7b-instruct.json").read_text())).save_pretrained(tmp_path)
    path = tmp_path / "config.json"
    data = json.loads(path.read_text())
    assert (data["num_kv_heads"], data["num_key_value_heads"], data["multi_query"]) == (71, 1, True)
    result = cli("import-hf", path, "-o", tmp_path / "falcon.yaml")
    assert result.exit_code == 0, result.stderr
    assert symcost.evaluate(symcost.load(tmp_path / "falcon.yaml")).total["params"] == 6_921_720_704
    path.write_text(json.dumps(data | {"num_key_value_heads": 8}))
    result = cli("import-hf", path)
    assert result.exit_code == 2 and result.stderr.count("\n") == 1 and "Traceback" not in result.output
    assert "num_key_value_heads: 8 contradicts num_kv_heads 71" in result.stderr
