"""Brute-force references for the exact engine, independent of its adaptive rules.

The binomial-normal model is integrated on fixed dense grids: each row's baseline by
Gauss-Legendre quadrature (600 nodes on [-25, 25], or 1,200 on a window for a large row) at
every point of a fine theta grid,
each trial's random effect by convolving its likelihood with N(0, tau^2) on that grid (FFT),
and (d, tau) by Simpson's rule on a fine rectangle. No rule adapts to the data, no table is
interpolated and nothing is shared with rebayes.bayes.exact, so agreement checks both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import integrate, signal, special, stats


@dataclass(frozen=True)
class Reference:
    log_evidence: float
    p_d_greater: dict[float, float]
    d_mean: float
    p_tau_greater: dict[float, float]
    p_predictive_greater: dict[float, float]
    d_density: dict[float, float]


def row_likelihoods(events, n, theta, baseline_sd=2.0, nodes=600):
    """L_s(theta) for each row (baseline alpha ~ N(0, baseline_sd), arms alpha -+ theta/2).

    Gauss-Legendre in alpha on [-25, 25]; for a row of more than 200 participants, whose
    baseline is known to a few tenths, 1,200 nodes on +-6 around its pooled log odds instead
    (the baseline's mode moves by at most |theta| / 2 from there).
    """
    wide_x, wide_w = np.polynomial.legendre.leggauss(nodes)
    near_x, near_w = np.polynomial.legendre.leggauss(2 * nodes)
    out = []
    for (rc, rt), (nc, nt) in zip(np.asarray(events, float), np.asarray(n, float), strict=True):
        if nc + nt > 200:
            centre = special.logit((rc + rt + 0.5) / (nc + nt + 1))
            a, w = centre + 6 * near_x, 6 * near_w
        else:
            a, w = 25 * wide_x, 25 * wide_w
        x1 = a[None, :] - theta[:, None] / 2
        x2 = a[None, :] + theta[:, None] / 2
        log_f = (
            rc * special.log_expit(x1) + (nc - rc) * special.log_expit(-x1)
            + rt * special.log_expit(x2) + (nt - rt) * special.log_expit(-x2)
            + stats.norm.logpdf(a, 0, baseline_sd)
            + special.gammaln(nc + 1) - special.gammaln(rc + 1) - special.gammaln(nc - rc + 1)
            + special.gammaln(nt + 1) - special.gammaln(rt + 1) - special.gammaln(nt - rt + 1)
        )
        out.append(np.exp(log_f) @ w)
    return np.array(out)


def binomial_reference(events, n, *, d_sd=1.0, d_mean=0.0, tau_prior=None, tau_max=4.0,
                       tau_step=0.005, theta_step=0.01, span=10.0, d_span=(-4.0, 4.0),
                       thresholds=(0.0,), tau_thresholds=(0.2,)):
    """Posterior summaries of the common-effect binomial-normal model by brute force.

    d ~ N(d_mean, d_sd), tau ~ ``tau_prior`` (a scipy.stats frozen distribution; default
    HalfNormal(0.5)), alpha ~ N(0, 2) per row, one trial per row.
    """
    tau_prior = tau_prior or stats.halfnorm(scale=0.5)
    theta = np.arange(-span, span + theta_step / 2, theta_step)
    L = row_likelihoods(events, n, theta)
    second = (np.roll(L, -1, 1) - 2 * L + np.roll(L, 1, 1)) / theta_step**2
    keep = (theta >= d_span[0] - 1e-9) & (theta <= d_span[1] + 1e-9)
    d = theta[keep]
    log_prior_d = stats.norm.logpdf(d, d_mean, d_sd)
    kernel_x = np.arange(-int(2 * span / theta_step), int(2 * span / theta_step) + 1) * theta_step
    taus = np.arange(0.0, tau_max + tau_step / 2, tau_step)
    evidence, above, mean, predictive = [], {t: [] for t in thresholds}, [], {t: [] for t in
                                                                                thresholds}
    # d's posterior density at each threshold: the integrand at the nearest grid point.
    nearest = {t: int(np.argmin(np.abs(d - t))) for t in thresholds}
    at = {t: [] for t in thresholds}
    for tau in taus:
        if tau < 4 * theta_step:
            conv = L + 0.5 * tau**2 * second
        else:
            kernel = stats.norm.pdf(kernel_x, 0, tau) * theta_step
            conv = signal.fftconvolve(L, kernel[None, :], mode="same", axes=1)
        f = np.exp(np.log(np.maximum(conv[:, keep], 1e-300)).sum(axis=0) + log_prior_d)
        evidence.append(integrate.simpson(f, x=d))
        mean.append(integrate.simpson(f * d, x=d))
        for t in thresholds:
            upper = d >= t - 1e-12
            above[t].append(integrate.simpson(f[upper], x=d[upper]))
            at[t].append(f[nearest[t]])
            tail = special.ndtr((d - t) / tau) if tau > 0 else (d > t) + 0.5 * (d == t)
            predictive[t].append(integrate.simpson(f * tail, x=d))
    evidence = np.array(evidence)
    weight = tau_prior.pdf(taus)
    Z = integrate.simpson(evidence * weight, x=taus)
    p_tau = {}
    for t in tau_thresholds:
        upper = taus >= t - 1e-12
        p_tau[t] = integrate.simpson((evidence * weight)[upper], x=taus[upper]) / Z
    return Reference(
        log_evidence=float(np.log(Z)),
        p_d_greater={t: integrate.simpson(np.array(v) * weight, x=taus) / Z
                     for t, v in above.items()},
        d_mean=integrate.simpson(np.array(mean) * weight, x=taus) / Z,
        p_tau_greater=p_tau,
        p_predictive_greater={t: integrate.simpson(np.array(v) * weight, x=taus) / Z
                              for t, v in predictive.items()},
        d_density={t: integrate.simpson(np.array(v) * weight, x=taus) / Z
                   for t, v in at.items()},
    )
