"""The fork server's preload: TensorFlow imported, and no thread started, so that forking after it is safe."""

import json
import subprocess
import sys

PROBE = """
import json, os, sys
import numpy  # its BLAS threads start here, before the preload
threads = lambda: len(os.listdir("/proc/self/task"))
before = threads()
import pipeline.engines.preload
print(json.dumps({"before": before, "after": threads(), "tensorflow": "tensorflow" in sys.modules}))
"""


def test_preload_imports_tensorflow_and_starts_no_thread():
    run = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    seen = json.loads(run.stdout.splitlines()[-1])
    assert seen["tensorflow"]
    assert seen["after"] == seen["before"]
