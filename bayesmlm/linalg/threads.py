"""Stage 3, linear algebra: BLAS and LAPACK on one thread while the likelihood's small matrices are factored.

The blocked factorisation (:mod:`bayesmlm.linalg.factorize`) makes thousands of LAPACK and BLAS calls
on matrices of tens to about a thousand rows. OpenBLAS splits such calls over all cores and its threads
wait for each other after every call; on a machine whose cores are busy with other work that waiting
dominates. Measured on 2 shared cores (load 12): the 60 × 40 subjects × items REML fit took 16.6 s with
OpenBLAS's 2 threads and 0.25 s with one; InstEval's REML fit 26 s of CPU with 2 threads, 6 s with one.
:func:`single_threaded` limits every BLAS library loaded in the process (NumPy's and SciPy's copies of
OpenBLAS) for the duration of a ``with`` block and restores the previous setting after it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from threadpoolctl import ThreadpoolController

__all__ = ["single_threaded"]


@cache
def _controller() -> ThreadpoolController:
    return ThreadpoolController()


@contextmanager
def single_threaded() -> Iterator[None]:
    """Run the body with BLAS and LAPACK limited to one thread.

    Examples
    --------
    >>> import numpy as np
    >>> with single_threaded():
    ...     float(np.linalg.cholesky(np.eye(3) * 4.0)[0, 0])
    2.0
    """
    with _controller().limit(limits=1, user_api="blas"):
        yield
