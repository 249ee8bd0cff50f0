"""Closed forms printed as code: numpy that evaluates a grid at once (vectorized), dependency-free
exact Python (python: flops-per-token's function, the eval cache's module), and JavaScript over
exact rationals (js: the page). Each printer refuses a node it has no exact rule for."""
