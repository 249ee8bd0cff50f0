"""Rendering: one module per group of results (model, explore, memory), and text.py for
what they share (readable formulas, numbers, fitting the terminal's width)."""
