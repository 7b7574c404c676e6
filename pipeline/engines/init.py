"""Initial weights of every replica, drawn from its own seed with Keras's own initializers.

Both engines start from these arrays, so a replica's initial weights depend on its seed alone,
whichever engine trains it: glorot-uniform input and dense kernels, an orthogonal recurrent kernel,
zero biases with the forget gate's bias at one (Keras's ``unit_forget_bias``).
"""

from __future__ import annotations

import numpy as np

from pipeline.seeds import WEIGHTS_STREAM, stream_seed


def initial_weights(seeds: np.ndarray, units: int, n_features: int = 1) -> dict[str, np.ndarray]:
    """Stacked float32 initial weights, one replica per seed (layout of ``TrainedReplicas.weights``)."""
    import keras

    per_replica = []
    for seed in np.asarray(seeds):
        s = [stream_seed(int(seed), WEIGHTS_STREAM, i) for i in range(3)]
        bias = np.zeros(4 * units, dtype=np.float32)
        bias[units : 2 * units] = 1.0
        per_replica.append(
            {
                "kernel": keras.initializers.GlorotUniform(seed=s[0])((n_features, 4 * units)),
                "recurrent_kernel": keras.initializers.Orthogonal(seed=s[1])((units, 4 * units)),
                "bias": bias,
                "dense_kernel": keras.initializers.GlorotUniform(seed=s[2])((units, 1)),
                "dense_bias": np.zeros(1, dtype=np.float32),
            }
        )
    return {
        name: np.stack([np.asarray(w[name], dtype=np.float32) for w in per_replica]) for name in per_replica[0]
    }
