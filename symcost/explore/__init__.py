"""Exploring a derivation: leading terms, sweeps, solving, crossovers, comparisons."""
