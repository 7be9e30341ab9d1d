"""Small statistics helpers that need only the standard library."""
import math


def binomial_cdf(k, n, p):
    """P(X <= k) for X ~ Binomial(n, p), summed in log space for large n."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    total = 0.0
    for i in range(0, k + 1):
        logp = (math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)
                + i * math.log(p) + (n - i) * math.log1p(-p))
        total += math.exp(logp)
    return min(total, 1.0)


def binomial_band(n, p, level):
    """Central `level` interval of Binomial(n, p): (lower, upper) counts."""
    lo_q, hi_q = 0.5 * (1 - level), 0.5 * (1 + level)
    lo = hi = None
    c = 0.0
    for k in range(n + 1):
        c = binomial_cdf(k, n, p)
        if lo is None and c >= lo_q:
            lo = k
        if c >= hi_q:
            hi = k
            break
    return lo, hi if hi is not None else n
