"""Limits shared by the spec reader and the command line (light: no sympy here)."""

MAX_FILE_BYTES = 1_000_000  # a spec or config file
MAX_LITERAL = 10**18  # every integer a user writes, in a spec or as an option, is below this
