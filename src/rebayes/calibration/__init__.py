"""Simulation-based calibration (SBC) of the model, scenario by scenario.

SBC (Talts et al. 2018) checks the whole inference -- model code, priors, sampler and the
derived quantities -- without real data: draw parameters from the prior, simulate a data set
from them, fit it, and find the rank of the true value among L posterior draws. If the
posterior is computed correctly, the rank is uniform on 0..L for every quantity, and central
x% posterior intervals contain the true value in x% of the simulations. Ranks piling up at both
ends mean posteriors that are too narrow; a hump in the middle, too wide; a slope, bias.

What is simulated here, to look like a small meta-analysis (10 trials, 9-47 participants per
arm, control risks 0.3-0.8):

- ``d``, ``tau``: from the default prior set ``weakly_informative`` (d ~ N(0, 1),
  tau ~ HalfNormal(0.5));
- ``z`` ~ N(0, 1) per trial, so the trial effect is ``theta = d + tau * z`` (the model's
  non-centred form);
- ``alpha`` (control log odds) per trial: from N(0.27, 0.57) -- see :func:`calibration_prior`;
- participants per arm: uniform on 9..47, each arm drawn independently;
- events per arm: Binomial(n, expit(alpha - theta / 2)) and Binomial(n, expit(alpha + theta / 2))
  (control, treatment; the model's arm coding, :func:`rebayes.bayes.model.arm_log_odds`).

SBC is valid only when the simulation draws from the prior the model is fitted with. The
default baseline prior alpha ~ N(0, 2) puts control risks anywhere in 0.02-0.98, not in
0.3-0.8; truncating the simulated risks to 0.3-0.8 while fitting N(0, 2) would test a
different model. So the calibrated prior set, :func:`calibration_prior`, is the default set
with one change: alpha ~ N(0.27, 0.57), which puts 95% of control risks in 0.30-0.80 (logit
0.3 = -0.85 and logit 0.8 = 1.39 are 0.27 -/+ 1.96 x 0.57). Simulation and fit both use it, so
d, tau and the pooled RR are calibrated under the default d and tau priors on data of that
shape. Any other :class:`~rebayes.bayes.priors.PriorSet` (including the unmodified
default) can be passed to :func:`run_sbc` instead; the simulation then draws from that set.

Quantities checked (:data:`QUANTITIES`): ``d`` (pooled log OR), ``tau``, and the pooled RR at
the control risk p0, computed by :func:`rebayes.bayes.quantities.pooled_rr` both from the
posterior
draws and from the true parameters (as a one-draw "posterior"), so truth and estimate use the
same formula.

Ranks use ``L = 99`` draws thinned evenly from all chains (Talts et al. section 4: thin to
roughly independent draws). Thinning to L draws spaced ``N / L`` apart is enough when the
effective sample size is at least L; each simulation records its smallest bulk ESS, and the
sampler settings (:data:`SBC_SETTINGS`) sample longer when the ESS falls below L + 1. Coverage
uses all the draws.

References
----------
Talts S, Betancourt M, Simpson D, Vehtari A, Gelman A. Validating Bayesian inference
algorithms with simulation-based calibration. arXiv:1804.06788 (2018).
Säilynoja T, Bürkner P-C, Vehtari A. Graphical test for discrete uniformity and its
applications in goodness-of-fit evaluation and multiple sample comparison. Statistics and
Computing 32, 32 (2022). doi:10.1007/s11222-022-10090-6.

Modules: :mod:`~rebayes.calibration.simulation` (priors, scenarios, simulated data),
:mod:`~rebayes.calibration.ranks` (ranks, uniformity, coverage),
:mod:`~rebayes.calibration.sbc` (:func:`run_sbc`).
"""
