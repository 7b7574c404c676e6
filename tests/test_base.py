"""The engine interface's TensorFlow import: without eager Keras, its namespaces loaded only when touched."""

import json
import subprocess
import sys

PROBE = """
import json, sys
from pipeline.engines.base import import_tensorflow
tf = import_tensorflow()
unused = ("keras", "tensorflow.python.distribute.collective_all_reduce_strategy")
before = {name: name in sys.modules for name in unused}
rows = [int(x) for x in tf.data.Dataset.range(3)]  # a namespace nothing had touched
strategy = tf.distribute.has_strategy()  # one that shares its name with a real package
import keras
model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
print(json.dumps({"before": before, "rows": rows, "strategy": strategy,
                  "outputs": list(model(tf.ones((4, 2))).shape), "distribute": tf.distribute.__name__,
                  "finders": [type(f).__name__ for f in sys.meta_path]}))
"""


def test_tensorflow_imports_without_keras_and_loads_namespaces_when_touched():
    run = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    seen = json.loads(run.stdout.splitlines()[-1])
    assert seen["before"] == {"keras": False, "tensorflow.python.distribute.collective_all_reduce_strategy": False}
    assert seen["rows"] == [0, 1, 2]
    assert seen["strategy"] is False
    assert seen["distribute"] == "tensorflow._api.v2.distribute"  # the namespace, not the package of that name
    assert seen["outputs"] == [4, 1]  # Keras, imported afterwards, works as usual
    assert "_LazyNamespaces" not in seen["finders"]  # the finder is gone once TensorFlow is imported
