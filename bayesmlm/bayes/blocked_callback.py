"""Stage 4b, Bayes: the blocked collapsed density as a C callback nutpie calls from Rust (no Python per step).

:class:`~bayesmlm.bayes.direct_blocked.BlockedDensity` is a Python callable: through nutpie's
Python-function interface every gradient takes the GIL to enter and leave the interpreter, so two chains
in threads wait for each other. Here :func:`pack_blocked` lays the kernel's arguments out in one float64
buffer and :func:`blocked_c_logp` (a numba ``cfunc``, compiled once per machine and cached) unpacks it
and calls :func:`~bayesmlm.bayes.blocked_kernel.blocked_density_kernel`, as
:mod:`bayesmlm.bayes.glmm_kernel` does for generalized models. The draws are the same as through the
Python callable (tested); measured on 60 × 40 subjects × items, 4 × 1,000 draws after 1,000 tuning
steps, 2 cores: see ``docs/performance.md``.
"""

from __future__ import annotations

import numba
import numpy as np

from bayesmlm.bayes.blocked_kernel import blocked_density_kernel
from bayesmlm.bayes.nutpie_callback import C_LOGP_SIGNATURE, finish, pack_buffer, take

__all__ = ["BLOCKED_HEADER", "blocked_c_logp", "pack_blocked"]

#: the header: length, p, terms of T, blocks, Q, q₁, dense-part factors, dense-part level blocks, m₁,
#: q_R, σ's prior code, yᵀy, n, the shifted column (-1: none), the shift, the density's constant
BLOCKED_HEADER = 16


def pack_blocked(args: tuple, Q: int, constant: float) -> np.ndarray:
    """Pack :class:`~bayesmlm.bayes.direct_blocked.BlockedDensity`'s kernel arguments into one buffer.

    ``args`` is the density's ``_args`` (the kernel's inputs between ``x`` and the scratch ``T``); the
    integers are stored as floats (exact: all are far below 2⁵³), booleans as 0/1.
    """
    (
        p, t_rows, t_cols, t_coord, t_diag, blocks, etas, fixed_codes, fixed_par, sd_codes, sd_par,
        sigma_code, sigma_par, q1, rest_off, rest_q, lvl_start, lvl_fac, ztz1, ztx1, zty1, ztz_r, a_1r,
        ztx_r, zty_r, xtx, xty, yty, n, shift_index, shift,
    ) = args  # fmt: skip
    parts = [
        t_rows, t_cols, t_coord, t_diag, blocks, etas, fixed_codes, fixed_par, sd_codes, sd_par, sigma_par,
        rest_off, rest_q, lvl_start, lvl_fac, ztz1, ztx1, zty1, ztz_r, a_1r, ztx_r, zty_r, xtx, xty,
    ]  # fmt: skip
    head = [
        p, t_rows.shape[0], blocks.shape[0], Q, q1, rest_q.shape[0], lvl_start.shape[0], ztz1.shape[0],
        ztz_r.shape[0], sigma_code, yty, n, shift_index, shift, constant,
    ]  # fmt: skip
    return pack_buffer(head, parts)


@numba.njit(cache=True, nogil=True)
def _ints(buf, at, size):
    a, at = take(buf, at, size)
    return a.astype(np.int64), at


@numba.cfunc(C_LOGP_SIGNATURE, cache=True, nogil=True)
def blocked_c_logp(dim, x_, out_, logp_, data_):
    """Evaluate the blocked log posterior for nutpie's Rust sampler from :func:`pack_blocked`'s buffer.

    Returns 0, or nutpie's codes 3 (a non-finite gradient) and 4 (a non-finite log density).
    """
    head = numba.carray(data_, (BLOCKED_HEADER,))
    buf = numba.carray(data_, (int(head[0]),))
    p, nt, nb, Q, q1, nf = int(head[1]), int(head[2]), int(head[3]), int(head[4]), int(head[5]), int(head[6])
    nlvl, m1, qr = int(head[7]), int(head[8]), int(head[9])
    at = BLOCKED_HEADER
    t_rows, at = _ints(buf, at, nt)
    t_cols, at = _ints(buf, at, nt)
    t_coord, at = _ints(buf, at, nt)
    t_diag_f, at = take(buf, at, nt)
    blocks, at = _ints(buf, at, nb * 3)
    etas, at = take(buf, at, nb)
    fixed_codes, at = _ints(buf, at, p)
    fixed_par, at = take(buf, at, p * 3)
    sd_codes, at = _ints(buf, at, Q)
    sd_par, at = take(buf, at, Q * 3)
    sigma_par, at = take(buf, at, 3)
    rest_off, at = _ints(buf, at, nf)
    rest_q, at = _ints(buf, at, nf)
    lvl_start, at = _ints(buf, at, nlvl)
    lvl_fac, at = _ints(buf, at, nlvl)
    ztz1, at = take(buf, at, m1 * q1 * q1)
    ztx1, at = take(buf, at, m1 * q1 * p)
    zty1, at = take(buf, at, m1 * q1)
    ztz_r, at = take(buf, at, qr * qr)
    a_1r, at = take(buf, at, m1 * q1 * qr)
    ztx_r, at = take(buf, at, qr * p)
    zty_r, at = take(buf, at, qr)
    xtx, at = take(buf, at, p * p)
    xty, at = take(buf, at, p)
    x = numba.carray(x_, (dim,))
    out = numba.carray(out_, (dim,))
    T = np.zeros((Q, Q))
    lp = blocked_density_kernel(
        x, p, t_rows, t_cols, t_coord, t_diag_f != 0.0, blocks.reshape((nb, 3)), etas, fixed_codes,
        fixed_par.reshape((p, 3)), sd_codes, sd_par.reshape((Q, 3)), int(head[10]), sigma_par, q1, rest_off,
        rest_q, lvl_start, lvl_fac, ztz1.reshape((m1, q1, q1)), ztx1.reshape((m1, q1, p)),
        zty1.reshape((m1, q1)), ztz_r.reshape((qr, qr)), a_1r.reshape((m1 * q1, qr)), ztx_r.reshape((qr, p)),
        zty_r, xtx.reshape((p, p)), xty, head[11], head[12], int(head[13]), head[14], T, out,
    )  # fmt: skip
    return finish(dim, out, logp_, lp + head[15])
