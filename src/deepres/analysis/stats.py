"""The verdict rule the reports judge a finding by, with a stated error rate.

A finding compares two arms (say ResNet-20 and ResNet-56, each trained over several seeds) in the
direction the paper reports. The test is Welch's one-sided t-test on the per-seed values: under
the null hypothesis (no real difference in that direction) it says "reproduced" with
probability at most ``ALPHA`` (5%), whatever the two arms' variances, for normally distributed
seed-to-seed noise (tests/analysis/test_stats.py simulates it). The exact permutation p-value is
given beside it; with 3 seeds per arm its smallest possible value is 1/20, so it can never reach
5% on its own: that is why the rule rests on Welch's test and asks for at least 3 seeds per arm.

Verdicts:
- "reproduced": at least ``MIN_SEEDS`` seeds per arm and one-sided p < ``ALPHA`` in the
  paper's direction;
- "contradicted": the same, in the opposite direction;
- "consistent with the paper, not established": the mean difference is in the paper's
  direction, but the test does not reach ``ALPHA`` or the seeds are too few to claim it;
- "not resolved": anything else (no difference in the paper's direction, or nothing measured).

No dependency beyond the standard library: Student's t distribution comes from the regularised
incomplete beta function, computed by its continued fraction.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

ALPHA = 0.05
MIN_SEEDS = 3

REPRODUCED = "reproduced"
CONTRADICTED = "contradicted"
CONSISTENT = "consistent with the paper, not established"
NOT_RESOLVED = "not resolved"


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz's method)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        for num in (m * (b - m) * x / ((qam + m2) * (a + m2)),
                    -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def t_sf(t: float, df: float) -> float:
    """P(T > t) for Student's t with ``df`` degrees of freedom (df may be fractional)."""
    if math.isinf(t):
        return 0.0 if t > 0 else 1.0
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))
    return tail if t > 0 else 1.0 - tail


def t_ppf(q: float, df: float) -> float:
    """The ``q`` quantile of Student's t (bisection on :func:`t_sf`)."""
    lo, hi = -1e4, 1e4
    for _ in range(70):
        mid = (lo + hi) / 2
        if 1.0 - t_sf(mid, df) < q:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


@dataclass(frozen=True)
class Comparison:
    """One finding's test. ``gap`` is mean(b) - mean(a) oriented so that > 0 is the paper's
    direction; ``ci`` its two-sided 95% Welch interval; ``p`` the one-sided Welch p-value for
    gap > 0 (None where an arm has a single seed); ``p_perm`` the exact permutation one."""

    n_a: int
    n_b: int
    gap: float
    ci: tuple[float, float] | None
    t: float | None
    df: float | None
    p: float | None
    p_perm: float | None
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def welch(a: list[float], b: list[float], interval: bool = True
          ) -> tuple[float, float, float, tuple[float, float] | None]:
    """(t, df, one-sided p for mean(b) > mean(a), 95% CI of mean(b) - mean(a) or None without
    ``interval``); each arm needs at least 2 values."""
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    gap = statistics.mean(b) - statistics.mean(a)
    se = math.sqrt(va + vb)
    if se == 0.0:
        t = math.copysign(math.inf, gap) if gap else 0.0
        return t, float(len(a) + len(b) - 2), (0.0 if gap > 0 else 1.0 if gap < 0 else 0.5), \
            (gap, gap)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    t = gap / se
    if not interval:
        return t, df, t_sf(t, df), None
    half = t_ppf(0.975, df) * se
    return t, df, t_sf(t, df), (gap - half, gap + half)


def permutation_p(a: list[float], b: list[float], limit: int = 20_000) -> float | None:
    """Exact one-sided permutation p-value of mean(b) - mean(a) (every relabelling of the
    pooled values; None if there are more than ``limit``)."""
    pooled, n_b = [*a, *b], len(b)
    if math.comb(len(pooled), n_b) > limit:
        return None
    observed = statistics.mean(b) - statistics.mean(a)
    hits = total = 0
    for pick in itertools.combinations(range(len(pooled)), n_b):
        chosen = set(pick)
        bb = [pooled[i] for i in pick]
        aa = [pooled[i] for i in range(len(pooled)) if i not in chosen]
        total += 1
        hits += statistics.mean(bb) - statistics.mean(aa) >= observed - 1e-12
    return hits / total


def compare(a: list[float], b: list[float], evidence: bool = True) -> Comparison:
    """Test ``mean(b) > mean(a)`` (arrange the arms so that this is the paper's direction) and
    give the verdict by the rule in this module's docstring. Without ``evidence`` the interval
    and the permutation p-value are skipped (the verdict does not use them)."""
    if not a or not b:
        return Comparison(len(a), len(b), math.nan, None, None, None, None, None, NOT_RESOLVED)
    gap = statistics.mean(b) - statistics.mean(a)
    t = df = p = None
    ci = None
    if len(a) >= 2 and len(b) >= 2:
        t, df, p, ci = welch(a, b, interval=evidence)
    p_perm = permutation_p(a, b) if evidence and len(a) + len(b) > 2 else None
    enough = min(len(a), len(b)) >= MIN_SEEDS
    if enough and p is not None and p < ALPHA:
        verdict = REPRODUCED
    elif enough and p is not None and 1.0 - p < ALPHA:
        verdict = CONTRADICTED
    elif gap > 0:
        verdict = CONSISTENT
    else:
        verdict = NOT_RESOLVED
    return Comparison(len(a), len(b), gap, ci, t, df, p, p_perm, verdict)


def describe(c: Comparison, show, unit: str = "") -> str:
    """The verdict with its evidence, for a report: "reproduced (gap 0.81 points, 95% CI ...,
    Welch t = ..., one-sided p = ...; 3 and 3 seeds)". ``show`` formats a value."""
    if c.n_a == 0 or c.n_b == 0:
        return f"{c.verdict}: nothing measured"
    parts = [f"gap {show(c.gap)}{unit} in the paper's direction" if c.gap >= 0
             else f"gap {show(-c.gap)}{unit} against the paper's direction"]
    if c.ci is not None:
        parts.append(f"95% CI {show(c.ci[0])} to {show(c.ci[1])}")
    if c.p is not None:
        parts.append(f"Welch t = {c.t:.2f} on {c.df:.1f} df, one-sided p = {c.p:.3g}")
    else:
        parts.append("no test: a single seed in an arm gives no variance")
    if c.p_perm is not None:
        parts.append(f"exact permutation p = {c.p_perm:.3g}")
    parts.append(f"{c.n_a} and {c.n_b} seed(s)")
    why = ""
    if c.verdict == CONSISTENT:
        why = (f"; 'reproduced' needs p < {ALPHA:g} with at least {MIN_SEEDS} seeds per arm"
               if min(c.n_a, c.n_b) < MIN_SEEDS else f"; p is not below {ALPHA:g}")
    return f"{c.verdict} ({'; '.join(parts)}{why})"


def judge(a: list[float], b: list[float], show: Callable[[float], str], *, unit: str = ""
          ) -> tuple[str, Comparison]:
    """The rule every report judges a finding by (``analysis.stats``): arms ``a`` and ``b``
    arranged so that mean(b) > mean(a) is the paper's direction. Returns the verdict with its
    evidence (gap, 95% CI, one-sided Welch p, exact permutation p, seeds) and the comparison."""
    c = compare(a, b)
    return describe(c, show, unit), c
