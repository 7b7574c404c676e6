"""Worker processes that end with the process that started them.

A pool's worker waits for work for ever once its parent is gone, and nothing tells it when the parent was
killed with -9: each worker watches the process it works for instead.
"""

from __future__ import annotations

import multiprocessing
import os
import select
import threading
import time
from concurrent.futures import ProcessPoolExecutor


def end_with(pid: int) -> None:
    """End this process as soon as process ``pid`` ends (a daemon thread waits for it). It need not be this process's
    parent: the engine's workers fork from a fork server, which lives as long as they do, and watch its client."""
    if not hasattr(os, "pidfd_open"):  # not Linux: look every 0.2 s
        def poll() -> None:
            while True:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    os._exit(1)
                time.sleep(0.2)

        threading.Thread(target=poll, daemon=True).start()
        return
    try:
        ended = os.pidfd_open(pid)  # readable once the process has ended, even if it is never reaped
    except ProcessLookupError:
        os._exit(1)

    def wait() -> None:
        select.select([ended], [], [])
        os._exit(1)

    threading.Thread(target=wait, daemon=True).start()


def forked_pool(workers: int) -> ProcessPoolExecutor:
    """``workers`` processes forked from this one, so sharing what it has imported, that end when it is gone."""
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"), initializer=end_with,
                               initargs=(os.getpid(),))
