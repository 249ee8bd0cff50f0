"""Scaling laws: fit L(N, D) to runs, and use a law with the spec's exact training compute."""
