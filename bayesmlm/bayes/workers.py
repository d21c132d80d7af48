"""Stage 4b, Bayes: the chains' worker processes, bound to the sampling process's life.

PyMC runs parallel chains in child processes. If the parent is killed (SIGKILL, or SIGTERM, which
exits without clean-up) they kept running, each holding a core; so each child asks Linux to kill it
when its parent dies (``prctl(PR_SET_PDEATHSIG, SIGKILL)``), and exits at once if the parent is already
gone. A worker that dies during sampling (killed by a signal, out of memory) leaves the parent a broken
pipe: :func:`worker_failures` turns PyMC's raw ``ConnectionResetError``/``EOFError`` into a
:class:`~bayesmlm.FitError` that says what happened.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
from multiprocessing.context import ForkContext, ForkProcess

from bayesmlm.exceptions import FitError

__all__ = ["bound_context", "worker_failures"]

_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    """In a child: be killed when the parent dies; exit now if it already has (Linux only)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # no prctl: nothing more can be done
        return
    if os.getppid() != parent:  # the parent died between fork and prctl
        os._exit(1)


class _BoundProcess(ForkProcess):
    """A forked process that dies with the process that started it."""

    def start(self):
        self._bound_parent = os.getpid()
        super().start()

    def run(self):
        _die_with_parent(self._bound_parent)
        super().run()


class _BoundForkContext(ForkContext):
    Process = _BoundProcess


def bound_context() -> multiprocessing.context.BaseContext | None:
    """Return the multiprocessing context for PyMC's chains: fork, children bound to the parent.

    None (PyMC's default) where ``fork`` is not available.
    """
    if "fork" not in multiprocessing.get_all_start_methods():
        return None
    return _BoundForkContext()


@contextlib.contextmanager
def worker_failures(chains: int):
    """Turn the broken pipe a dead chain worker leaves into a FitError."""
    try:
        yield
    except (ConnectionResetError, BrokenPipeError, EOFError) as err:
        raise FitError(
            f"a sampling worker process died during sampling ({type(err).__name__}: it was killed by a "
            "signal or ran out of memory); no fit was made and the model is unchanged: fit again, with "
            f"cores=1 to run the {chains} chains in this process"
        ) from err
