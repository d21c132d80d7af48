"""Stage 4b, Bayes: what nutpie's Rust sampler needs of a numba C callback: signatures, expansion, unpacking.

nutpie (``nutpie.compile_pymc_model(backend="numba")``) calls a model's log density through a C function
of :data:`C_LOGP_SIGNATURE`, with the model's data as one float64 buffer, and stores each draw through an
expansion of :data:`C_EXPAND_SIGNATURE`. The compiled densities (:mod:`bayesmlm.bayes.glmm_kernel`,
:mod:`bayesmlm.bayes.blocked_callback`) share these; their draws are the point itself
(:func:`identity_c_expand`).
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["C_EXPAND_SIGNATURE", "C_LOGP_SIGNATURE", "finish", "identity_c_expand", "pack_buffer", "take"]

#: the C signature nutpie calls a log density through: (ndim, x, gradient out, log p out, user data)
C_LOGP_SIGNATURE = numba.types.int64(
    numba.types.uint64,
    numba.types.CPointer(numba.types.double),
    numba.types.CPointer(numba.types.double),
    numba.types.CPointer(numba.types.double),
    numba.types.CPointer(numba.types.double),
)
#: the C signature of nutpie's expansion of a point into the stored draws (here: the point itself)
C_EXPAND_SIGNATURE = numba.types.int64(
    numba.types.uint64,
    numba.types.uint64,
    numba.types.CPointer(numba.types.double),
    numba.types.CPointer(numba.types.double),
    numba.types.voidptr,
)


def pack_buffer(header: list, parts: list) -> np.ndarray:
    """Return one float64 buffer: ``header`` with its length in front, then every array of ``parts``.

    ``header`` lacks the first field, which becomes the buffer's whole length (header included); the
    arrays follow raveled, integers and booleans as floats (exact: all are far below 2⁵³).
    """
    body = np.concatenate([np.ascontiguousarray(a, dtype=np.float64).ravel() for a in parts])
    head = np.asarray([len(header) + 1 + body.size, *header], dtype=np.float64)
    return np.ascontiguousarray(np.concatenate([head, body]))


@numba.njit(cache=True, nogil=True)
def finish(dim, out, logp_, value):
    """Store the log density ``value``; return 0, or nutpie's code 3 (gradient not finite) or 4 (value)."""
    logp_[0] = value
    for k in range(dim):
        if not math.isfinite(out[k]):
            return 3
    if not math.isfinite(value):
        return 4
    return 0


@numba.njit(cache=True, nogil=True)
def take(buf, at, size):
    """Return ``buf[at:at + size]`` and the position after it."""
    return buf[at : at + size], at + size


@numba.cfunc(C_EXPAND_SIGNATURE, cache=True, nogil=True)
def identity_c_expand(dim, expanded, x_, out_, data_):
    """Nutpie's expansion of a point into its stored draws: the point itself."""
    if dim != expanded:
        return -1
    for k in range(dim):
        out_[k] = x_[k]
    return 0
