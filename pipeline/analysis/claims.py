"""Every claim of the shampoo write-up (004), as data: its six expectations, the seven findings of its
review and its claims about spread, each tied to the regime pairs that test it and the acting factor it is
about (``pipeline.analysis.contrasts``). Wording is ours; the regimes are the study's own names.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.analysis.decision import Relation

STATE, SHUFFLE, TRAIN_RESETS, TEST_START, BETWEEN = (
    "carries state", "shuffle", "resets in training", "test starts from", "between predictions"
)


@dataclass(frozen=True)
class Claim:
    """``a`` is {relation} than ``b`` on ``endpoint`` (mean RMSE or its spread), for every (a, b) in ``pairs``.

    ``factor`` names the acting factor the claim is about: only pairs that differ in exactly that factor
    decide it (and, for an "equal" claim, pairs equal by construction). ``factor=None``: the claim is about
    the regimes as wholes, and every pair decides.
    """

    key: str
    source: str
    text: str
    pairs: tuple[tuple[str, str], ...]
    relation: Relation
    factor: str | None
    endpoint: str = "mean"  # "mean": mean RMSE; "spread": standard deviation of RMSE over repeats


EXPECTATIONS = (
    Claim("E1", "expectation 1", "A stateful LSTM outperforms a stateless one",
          (("stateful", "stateless"),), "lower", STATE),
    Claim("E2", "expectation 2", "A stateless LSTM trained without shuffling outperforms one trained with it",
          (("stateless", "stateless_shuffle"),), "lower", SHUFFLE),
    Claim("E3", "expectation 3", "Stateful and stateless LSTMs give alike results at the same batch size (12)",
          (("stateful_batch12", "stateless_batch12"),), "equal", STATE),
    Claim("E4", "expectation 4", "Resetting state after each training epoch improves test RMSE",
          (("stateful", "noreset"), ("seed_train", "seed_train_no_resets")), "lower", TRAIN_RESETS),
    Claim("E5", "expectation 5", "Warming the state on the training set before forecasting improves test RMSE",
          (("seed_train", "stateful"), ("seed_train_no_resets", "noreset")), "lower", TEST_START),
    Claim("E6", "expectation 6", "Not resetting state between one-step test predictions improves test RMSE",
          (("stateful", "reset_test"), ("seed_train", "seed_train_resets")), "lower", BETWEEN),
)

FINDINGS = (
    Claim("F2", "finding 2", "The stateless LSTM may perform better than the stateful one",
          (("stateless", "stateful"),), "lower", STATE),
    Claim("F3", "finding 3", "Not shuffling the stateless LSTM's training rows may be slightly better",
          (("stateless", "stateless_shuffle"),), "lower", SHUFFLE),
    Claim("F4", "finding 4", "At a large batch size a stateless LSTM simulates a stateful one",
          (("stateless_batch12", "stateful_batch12"),), "equal", STATE),
    Claim("F5", "finding 5", "Resetting the state between one-step test predictions may improve test RMSE",
          (("reset_test", "stateful"), ("seed_train_resets", "seed_train")), "lower", BETWEEN),
    Claim("F6", "finding 6", "Warming the state on the training set brings no obvious improvement",
          (("seed_train", "stateful"), ("seed_train_no_resets", "noreset"), ("seed_train_resets", "reset_test")),
          "not_lower", TEST_START),
    Claim("F7", "finding 7", "Warm-up without any resets gives the best test RMSE of the six resetting regimes",
          tuple(("seed_train_no_resets", b) for b in ("stateful", "reset_test", "noreset", "seed_train",
                                                         "seed_train_resets")), "lower", None),
)

SPREAD = (
    Claim("S1", "spread claim", "Stateless LSTMs are more stable (smaller spread) than the stateful one",
          (("stateless", "stateful"), ("stateless_shuffle", "stateful")), "lower", STATE, "spread"),
    Claim("S2", "spread claim", "No resets during training widen the spread",
          (("noreset", "stateful"), ("seed_train_no_resets", "seed_train")), "higher", TRAIN_RESETS, "spread"),
    Claim("S3", "spread claim", "Warming the state on the training set gives a tight spread",
          (("seed_train", "stateful"), ("seed_train_no_resets", "noreset"), ("seed_train_resets", "reset_test")),
          "lower", TEST_START, "spread"),
)

# Finding 1 is about the harness, not a contrast: 10 repeats move the mean and the SD by about this much
# (monthly sales), judged against A-vs-A studies of 10 repeats drawn from the pool.
A_VS_A = {"key": "F1", "source": "finding 1", "regime": "stateful", "repeats": 10, "claimed": 3.0,
          "text": "10 repeats leave about 3 (monthly sales) of variation in the mean and the SD"}

ALL = (*EXPECTATIONS, *FINDINGS, *SPREAD)
