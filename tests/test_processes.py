import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from textwrap import dedent


def test_forked_workers_and_theirs_end_when_their_parent_is_killed():
    code = dedent("""
        import os, time
        from pipeline import processes
        pools = [processes.forked_pool(1)]
        def inner():
            pools.append(processes.forked_pool(1))  # kept open: its worker waits for work
            return [os.getpid(), pools[-1].submit(os.getpid).result()]
        print(*pools[0].submit(inner).result(), flush=True)
        time.sleep(60)
    """)
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    workers = [int(pid) for pid in parent.stdout.readline().split()]
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [pid for pid in workers if _alive(pid)]
    for pid in left:  # a failure leaves nothing behind either
        os.kill(pid, signal.SIGKILL)
    assert not left


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has exited, whether or not anything reaps it
