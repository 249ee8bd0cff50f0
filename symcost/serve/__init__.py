"""Serving: a model on a replica of GPUs — weights and KV cache per GPU, capacity, concurrency,
prefill and decode bounds (serve.py), and speculative decoding (speculative.py)."""
