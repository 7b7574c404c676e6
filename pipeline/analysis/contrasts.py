"""The regimes as a factorial design, with the factors as they *act* on the LSTM's state.

A regime record says what the code is told (``stateful``, ``reset_after_epoch``, ...); what reaches the
state can differ. A stateful layer trained on one batch per epoch and reset after each never carries state
from one batch to the next; a reset after every prediction undoes a warm-up; a training run that is never
reset ends with the state its last epoch left, not at zero. So ``stateful`` and ``noreset`` differ in one
field but in two acting factors (resets during training *and* the state the test starts from). Everything
here is derived from the records, so a new regime file gets its factors without a table typed by hand.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from pipeline.regimes import StateRegime

ZERO, END_OF_TRAINING, WARMED = "zero", "end of training", "warmed on the training set"

LABELS = {
    "carries_state": "carries state",
    "training_resets": "resets in training",
    "test_start": "test starts from",
    "between_predictions": "between predictions",
    "shuffle": "shuffle",
    "window": "window / batch",
}
# Against a stateless regime, resets in training and between predictions are what "stateful" means: not
# separate differences.
IMPLIED_BY_STATE = ("training_resets", "between_predictions")


@dataclass(frozen=True)
class Factors:
    carries_state: bool  # state passes from one batch to the next somewhere (training, warm-up or test)
    training_resets: str  # "every batch", "each epoch" or "never"
    test_start: str  # state the first test forecast starts from: zero, end of training, warmed
    between_predictions: str  # "carried" or "reset"
    shuffle: bool  # rows reordered between training batches (a single batch cannot be reordered in effect)
    window: str  # training rows and batch size


def acting_factors(regime: StateRegime, train_pairs: int) -> Factors:
    """What the regime does to the state, given ``train_pairs`` training pairs in the full window."""
    r = regime
    rows = train_pairs if r.train_rows is None else r.train_rows
    batches = -(-rows // r.batch_size)
    carries_in_training = r.stateful and (batches > 1 or not r.reset_after_epoch)
    carries_in_test = r.stateful and r.forecast == "one_step" and not r.reset_after_prediction
    if not r.stateful:
        start = ZERO
    elif r.warm_start and not r.reset_after_prediction:
        start = WARMED
    else:
        start = ZERO if r.reset_after_epoch else END_OF_TRAINING
    resets = "each epoch" if r.reset_after_epoch else "never"
    resets = resets if carries_in_training else "every batch"
    window = f"{'all' if r.train_rows is None else 'last'} {rows} rows, batch {r.batch_size}"
    return Factors(
        carries_state=carries_in_training or carries_in_test or start != ZERO,
        training_resets=resets,
        test_start=start,
        between_predictions="carried" if carries_in_test else "reset",
        shuffle=r.shuffle and batches > 1,
        window=window,
    )


def differences(a: Factors, b: Factors) -> tuple[list[str], list[str]]:
    """(factors the pair differs in, factors whose difference is implied by carrying state or not)."""
    differ = [f.name for f in fields(Factors) if getattr(a, f.name) != getattr(b, f.name)]
    if a.carries_state == b.carries_state:
        return differ, []
    implied = [f for f in differ if f in IMPLIED_BY_STATE]
    return [f for f in differ if f not in implied], implied


@dataclass(frozen=True)
class PairDesign:
    """How two regimes differ as the design acts: the factors, and whether the pair is a clean contrast."""

    a: str
    b: str
    factors: tuple[str, ...]  # acting factors that differ (labels)
    implied: tuple[str, ...]  # differences that carrying state or not implies
    kind: str  # "clean", "compound", "equal by construction", "null by construction"
    note: str  # one sentence for the by-construction kinds, else ""

    @property
    def usable(self) -> bool:
        """Whether the pair may decide a claim about the factor it differs in."""
        return self.kind == "clean"


CLEAN, COMPOUND, TWINS, NULL = "clean", "compound", "equal by construction", "null by construction"


def _inert(a: StateRegime, b: StateRegime) -> str:
    """Why record fields that differ do not reach the state (the pair acts identically)."""
    fields_differ = [f.name for f in fields(StateRegime)
                     if f.name != "name" and getattr(a, f.name) != getattr(b, f.name)]
    reasons = []
    for name in fields_differ:
        if name == "stateful":
            reasons.append("with one batch per epoch, a reset after each and the test rows forecast in one batch, "
                           "a stateful layer never passes state from one batch to the next, so it acts as a "
                           "stateless one")
        elif name == "warm_start":
            reasons.append("a reset after every prediction, warm-up included, undoes the warm-up, so the test "
                           "starts from zero either way")
        elif name in ("reset_after_epoch", "reset_after_prediction"):
            reasons.append(f"`{name}` cannot act where the state is already zeroed before every batch")
        else:
            reasons.append(f"`{name}` does not change what reaches the state here")
    differ = ", ".join(f"`{n}`" for n in fields_differ)
    return f"Records differ in {differ}, but {'; and '.join(reasons)}."


def design(a: StateRegime, b: StateRegime, train_pairs: int) -> PairDesign:
    """Classify ``a`` vs ``b``: clean (one acting factor), compound (more), or equal/null by construction."""
    fa, fb = acting_factors(a, train_pairs), acting_factors(b, train_pairs)
    differ, implied = differences(fa, fb)
    labels, implied_labels = tuple(LABELS[f] for f in differ), tuple(LABELS[f] for f in implied)
    if not differ:
        return PairDesign(a.name, b.name, labels, implied_labels, TWINS, _inert(a, b))
    if differ == ["test_start"] and {fa.test_start, fb.test_start} == {WARMED, END_OF_TRAINING}:
        cold = fa if fa.test_start == END_OF_TRAINING else fb
        if cold.training_resets == "never" and not cold.shuffle:
            note = ("Training that is never reset ends each epoch with the state left by one in-order pass over the "
                    "training inputs, which is what a warm-up rebuilds, so both start the test from almost the same "
                    "state.")
            return PairDesign(a.name, b.name, labels, implied_labels, NULL, note)
    return PairDesign(a.name, b.name, labels, implied_labels, CLEAN if len(differ) == 1 else COMPOUND, "")


def decides(factor: str | None, relation: str, pair: PairDesign) -> bool:
    """Whether ``pair`` may decide a claim about ``factor`` (None: about the regimes as wholes) and ``relation``:
    a clean contrast in exactly that factor, or, for an "equal" claim, a pair equal by construction."""
    if factor is None:
        return True
    if pair.kind == TWINS:
        return relation == "equal"
    return pair.kind == CLEAN and pair.factors == (factor,)


def factor_table(regimes: list[StateRegime], train_pairs: int) -> list[dict[str, object]]:
    """One row per regime: its acting factors, labelled as the report shows them."""
    rows = []
    for r in regimes:
        f = asdict(acting_factors(r, train_pairs))
        rows.append({"regime": r.name, **{LABELS[k]: ("yes" if v is True else "no" if v is False else v)
                                          for k, v in f.items()}})
    return rows
