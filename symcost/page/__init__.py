"""`symcost page`: a spec as one self-contained HTML file that evaluates its closed forms in the browser."""
