"""Worker processes that end with the process that started them.

A pool's worker waits for work for ever once its parent is gone, and nothing tells it when the parent was
killed with -9: each worker watches its parent instead.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor


def watch_parent(parent: int) -> None:
    """End this process as soon as ``parent`` is no longer its parent (a daemon thread polls for it)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.2)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def forked_pool(workers: int) -> ProcessPoolExecutor:
    """``workers`` processes forked from this one, so sharing what it has imported, that end when it is gone."""
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"), initializer=watch_parent,
                               initargs=(os.getpid(),))
