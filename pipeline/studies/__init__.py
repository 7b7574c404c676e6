"""The other write-ups as studies: alphabet framings, echo memory, loop-vs-single-fit determinism.

Each module is one DVC stage (``python -m pipeline.studies.<name>``) with the house shape: pure
helpers for data and summaries, Keras 3 models built after seeding from the repeat's seed, and
``run(cfg, root)`` writing a markdown section, plots, a metrics JSON and one CSV row per seed.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of stage logs
