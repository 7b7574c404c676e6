"""What the engine's fork server imports before it forks the workers: TensorFlow, as the engine imports it.

Each worker then starts with TensorFlow loaded instead of importing it itself. Importing TensorFlow starts no thread
(its runtime starts with the first op, in the worker), so forking after it is safe.
"""

from pipeline.engines.base import import_tensorflow

import_tensorflow()
