"""Stage 4b, Bayes: what nutpie's Rust sampler needs of a numba C callback: signatures, expansion, unpacking.

nutpie (``nutpie.compile_pymc_model(backend="numba")``) calls a model's log density through a C function
of :data:`C_LOGP_SIGNATURE`, with the model's data as one float64 buffer, and stores each draw through an
expansion of :data:`C_EXPAND_SIGNATURE`. The compiled densities (:mod:`bayesmlm.bayes.glmm_kernel`,
:mod:`bayesmlm.bayes.blocked_callback`) share these; their draws are the point itself
(:func:`identity_c_expand`).
"""

from __future__ import annotations

import numba

__all__ = ["C_EXPAND_SIGNATURE", "C_LOGP_SIGNATURE", "identity_c_expand", "take"]

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
