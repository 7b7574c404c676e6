"""The interval-vs-margin decision rule: a verdict from where an interval of an effect lies against a margin.

The effect is "a minus b" (negative: a is lower). ``margin`` is the smallest effect of interest, in the
effect's own units. For a claim that a is lower: supported when the interval lies wholly below -margin,
contradicted when wholly above +margin, equivalent when wholly inside (-margin, +margin), else inconclusive.
For a claim that a and b are alike: supported when wholly inside the margin, contradicted when wholly
outside it (either side), else inconclusive. This is the smallest-effect-of-interest practice of
equivalence testing (Lakens 2017; Lakens, Scheel & Isager 2018): an interval decides, not a p-value alone.
"""

from __future__ import annotations

from typing import Literal

Relation = Literal["lower", "equal"]
VERDICTS = ("supported", "contradicted", "equivalent", "inconclusive")


def verdict(low: float, high: float, margin: float, relation: Relation) -> str:
    """The verdict on a claim about a - b from its interval [low, high] and the margin (>= 0)."""
    if margin < 0 or low > high:
        raise ValueError(f"need margin >= 0 and low <= high, got margin={margin}, interval=[{low}, {high}].")
    inside = -margin < low and high < margin
    below, above = high < -margin, low > margin
    if relation == "equal":
        return "supported" if inside else "contradicted" if below or above else "inconclusive"
    if relation != "lower":
        raise ValueError(f"relation must be 'lower' or 'equal', got {relation!r}.")
    return "supported" if below else "contradicted" if above else "equivalent" if inside else "inconclusive"
