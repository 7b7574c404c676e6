"""Series features (length, trend and seasonal strength) beside which regime wins on each series.

Strengths follow Wang, Smith & Hyndman (2006) / Hyndman & Athanasopoulos (FPP3, 4.3): with a decomposition
x = T + S + R, trend strength is max(0, 1 - var(R) / var(T + R)) and seasonal strength
max(0, 1 - var(R) / var(S + R)). Seasonal series are decomposed by statsmodels' robust STL; a series
without a season by the Hodrick-Prescott filter (lambda 100, the annual convention), seasonal strength 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from statsmodels.tsa.filters.hp_filter import hpfilter
from statsmodels.tsa.seasonal import STL

from pipeline.series import PanelSeries

STRONG = 0.64  # FPP's rule of thumb: a strength above 0.64 is a strong trend or season


def strengths(values: np.ndarray, season: int) -> tuple[float, float]:
    """(trend strength, seasonal strength) of a series, each in [0, 1]."""
    values = np.asarray(values, dtype=np.float64)
    if season >= 2 and len(values) >= 2 * season + 1:
        fit = STL(values, period=season, robust=True).fit()
        trend, seasonal, resid = fit.trend, fit.seasonal, fit.resid
    else:
        resid, trend = hpfilter(values, lamb=100)
        seasonal = np.zeros_like(values)
    var_r = np.var(resid)
    return (max(0.0, 1 - var_r / np.var(trend + resid)),
            max(0.0, 1 - var_r / np.var(seasonal + resid)) if season >= 2 else 0.0)


def table(panel: Sequence[PanelSeries], results: pd.DataFrame) -> pd.DataFrame:
    """Per series: frequency, length, strengths, and the regime with the lowest mean relative RMSE."""
    means = results.groupby(["series", "regime"], sort=False)["relative_rmse"].mean()
    rows = []
    for ps in panel:
        trend, seasonal = strengths(ps.values, ps.spec.season)
        own = means.loc[ps.name]
        rows.append({
            "series": ps.name, "frequency": ps.spec.frequency, "length": len(ps.values),
            "trend_strength": trend, "seasonal_strength": seasonal,
            "best_regime": own.idxmin(), "best_relative_rmse": float(own.min()),
            "worst_regime": own.idxmax(), "worst_relative_rmse": float(own.max()),
        })
    return pd.DataFrame(rows)


def winners_by_kind(features: pd.DataFrame) -> pd.DataFrame:
    """How often each regime wins, by frequency and by strong or weak trend and season."""
    kind = features.assign(
        trend=np.where(features.trend_strength > STRONG, "strong trend", "weak trend"),
        season=np.where(features.seasonal_strength > STRONG, "strong season", "weak season"),
    )
    parts = [pd.crosstab(kind[col], kind.best_regime) for col in ("frequency", "trend", "season")]
    return pd.concat(parts).fillna(0).astype(int).rename_axis("series kind")
