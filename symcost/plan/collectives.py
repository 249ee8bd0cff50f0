"""Collectives by name: what each rank sends for a collective over n ranks on a payload of B
bytes, with the algorithm it assumes.

The payload is the whole tensor the collective is about: the tensor all-reduced, the tensor an
all-gather assembles, the tensor a reduce-scatter reduces, one rank's all-to-all buffer, the
tensor a send/recv moves. Bandwidth-optimal ring algorithms (Patarasuk and Yuan 2009; NCCL's
"busBw" convention, https://github.com/NVIDIA/nccl-tests/blob/master/doc/PERFORMANCE.md):
an all-reduce is a reduce-scatter then an all-gather.
"""

from __future__ import annotations

import sympy

SOURCE = "ring algorithms (Patarasuk & Yuan 2009; NCCL busBw convention)"


def ring_all_reduce(payload, n):
    return 2 * (n - 1) * payload / n


def ring_all_gather(payload, n):
    return (n - 1) * payload / n


def ring_reduce_scatter(payload, n):
    return (n - 1) * payload / n


def all_to_all(payload, n):
    """Each rank keeps 1/n of its buffer (balanced routing) and sends the rest."""
    return (n - 1) * payload / n


def send_recv(payload, n=1):
    return sympy.sympify(payload)


SENT = {
    "all_reduce": ring_all_reduce,
    "all_gather": ring_all_gather,
    "reduce_scatter": ring_reduce_scatter,
    "all_to_all": all_to_all,
    "send_recv": send_recv,
    "copy": send_recv,  # a GPU's copy to or from its host (an offloaded run's): every byte crosses the link once
}
