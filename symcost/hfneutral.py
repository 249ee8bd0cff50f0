"""Hugging Face config fields that change no parameter or FLOP count, as data.

import-hf accepts these unread and lists them as ignored; any other field it does not read
is refused, because it may change the architecture. A field belongs here only if no value
of it changes a count: token ids, dropout probabilities, epsilons, initialisation, dtypes,
rope frequencies and scaling, cache and output flags, loading metadata (`auto_map`), generation
defaults, and router loss weights. (`quantization_config` changes bytes: hf/quantization.py reads it.)
"""

from __future__ import annotations

import re

NAMES = frozenset({
    # loading and bookkeeping
    "_name_or_path", "architectures", "transformers_version", "model_type", "torch_dtype", "dtype", "auto_map",
    "_commit_hash", "_attn_implementation", "_attn_implementation_autoset",
    "attn_implementation", "tokenizer_class", "use_bfloat16", "torchscript", "model_max_length",
    "use_flash_attention_2", "_flash_attn_2_enabled", "gradient_checkpointing", "cache_implementation",
    "use_cache", "output_past", "return_dict", "use_return_dict", "output_attentions", "output_hidden_states", "output_scores",
    "return_dict_in_generate", "is_encoder_decoder", "chunk_size_feed_forward", "problem_type", "finetuning_task",
    "prefix", "task_specific_params", "id2label", "label2id",
    # initialisation and numerics
    "initializer_range", "initializer_factor", "init_std", "layer_norm_eps", "layer_norm_epsilon", "rms_norm_eps",
    "norm_eps", "norm_epsilon", "attention_softmax_in_fp32", "scale_attention_softmax_in_fp32",
    "scale_attn_weights", "scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn", "pretraining_tp",
    "query_pre_attn_scalar", "attn_logit_softcapping", "final_logit_softcapping",
    # positions: frequencies and scaling, not sizes
    "rope_theta", "rope_scaling", "rope_parameters", "rope_interleave", "original_max_position_embeddings",
    "rotary_emb_base",  # GPT-NeoX's older name for rope_theta
    "rope_local_base_freq",  # Gemma 3's rope_theta for its sliding layers
    "relative_attention_max_distance", "scale_decoder_outputs",
    # mixture-of-experts training settings
    "output_router_logits", "router_aux_loss_coef", "router_z_loss_coef", "router_jitter_noise", "aux_loss_alpha",
    "norm_topk_prob", "routed_scaling_factor", "n_group", "topk_group", "topk_method", "scoring_func", "seq_aux",
    "ep_size", "num_nextn_predict_layers",  # DeepSeek's multi-token-prediction module is not part of the main model
    # sequence-summary settings of the double-heads models, read by no base model
    "summary_type", "summary_use_proj", "summary_activation", "summary_proj_to_labels",
    # generation defaults
    "max_length", "min_length", "do_sample", "early_stopping", "num_beams", "num_beam_groups", "diversity_penalty",
    "temperature", "top_p", "typical_p", "repetition_penalty", "length_penalty", "no_repeat_ngram_size",
    "encoder_no_repeat_ngram_size", "bad_words_ids", "num_return_sequences", "remove_invalid_values",
    "exponential_decay_length_penalty", "suppress_tokens", "begin_suppress_tokens", "tf_legacy_loss",
    "forced_decoder_ids", "force_bos_token_to_be_generated",  # Whisper's task tokens, BART's legacy first token
    "num_logits_to_keep", "calc_logits_for_entire_prompt",  # Jamba's: the prompt positions generation scores
    "pad_key_length",  # GPTBigCode (StarCoder): pads keys for a fused kernel's alignment, computes nothing more
})

# ..._token_id(s), any dropout probability (..._dropout, ..._dropout_prob, ..._pdrop, dropout_rate)
DROPOUT = (re.compile(r".*dropout.*"), re.compile(r".*_pdrop$"))
PATTERNS = (re.compile(r".*_token_ids?$"), *DROPOUT)

# PretrainedConfig's own fields, which configs saved by transformers 4.x hold in full: no count
# changes at these values, its defaults, but another may (cross-attention layers added, heads
# pruned, encoder and decoder tied), so another is refused unless the family reads the field.
# top_k is sampling's; no supported family names its experts per token so.
AT_DEFAULT = {"add_cross_attention": False, "cross_attention_hidden_size": None, "is_decoder": False,
              "tie_encoder_decoder": False, "pruned_heads": {}, "top_k": 50,
              "use_mrope": False}  # Qwen2.5's text configs say so; true is a vision-language model's (REFUSED)

# Why a field is refused at a value other than its neutral one, where the general reason says too little
REFUSED = {"use_mrope": "multimodal rotary positions change no count, but they are a vision-language model's, "
                        "whose vision tower this config does not describe; import the model's text config"}


def dropout(key: str) -> bool:
    """Whether this config field is a dropout probability (no parameter or FLOP count; in training,
    masks that activation memory would hold: import-hf notes it when one is above 0)."""
    return any(p.fullmatch(key) for p in DROPOUT)


def neutral(key: str, value=None) -> bool:
    """Whether this config field, holding `value`, changes no parameter or FLOP count."""
    return (key in NAMES or any(p.fullmatch(key) for p in PATTERNS)
            or (key in AT_DEFAULT and value == AT_DEFAULT[key]))
