"""How a fit is sampled: draws, tuning, chains, when to sample longer, what a fit keeps.

nutpie's NUTS, 4 chains x 1000 draws after 1000 tuning steps, target acceptance 0.9; a run
that diverged is re-run at target acceptance 0.99, and draws are doubled (up to 4000) while a
parameter's bulk ESS is below 1000 or a transition diverged (:class:`SamplerSettings`; the
run itself: :func:`rebayes.bayes.nuts.run_nuts`). The settings and the seed are part of every
fit's key (:func:`rebayes.bayes.fit.fit_key`).

Light on purpose: most modules that take a :class:`SamplerSettings` never sample, so this
imports neither xarray nor PyMC nor nutpie.
"""

from __future__ import annotations

from dataclasses import dataclass

from rebayes.errors import RebayesError

__all__ = [
    "DIVERGENCE_TARGET_ACCEPT",
    "ENGINES",
    "SAMPLE_STATS",
    "SamplerSettings",
]

#: What can answer a command (``--engine``): PyMC's NUTS, the exact engine
#: (:mod:`rebayes.bayes.exact_fit`), or the exact engine where it can and NUTS elsewhere.
ENGINES: tuple[str, ...] = ("nuts", "exact", "auto")

#: Target acceptance of the re-run after a run with divergent transitions.
DIVERGENCE_TARGET_ACCEPT = 0.99


#: Sampler statistics kept in a fit (nutpie records more; these are what diagnostics use, and
#: fewer variables make the NetCDF file faster to write).
SAMPLE_STATS: tuple[str, ...] = (
    "diverging",
    "energy",
    "energy_error",
    "max_energy_error",
    "logp",
    "step_size",
    "n_steps",
    "depth",
    "maxdepth_reached",
    "mean_tree_accept",
)


@dataclass(frozen=True)
class SamplerSettings:
    """How long to sample, and when to sample longer.

    A run with divergent transitions is first repeated with the same draws at target
    acceptance :data:`DIVERGENCE_TARGET_ACCEPT` (smaller steps, the remedy divergences call
    for); a run that misses ``min_ess`` (bulk ESS of any posterior parameter) or still
    diverges is then repeated with twice the draws up to ``max_draws`` per chain. The rule
    depends only on the draws, so a seed still gives the same numbers. A fit that diverges
    after all this is marked unreliable (:attr:`rebayes.bayes.records.FitSummary.reliable`). On
    this model 4 x 1000 draws with target acceptance 0.9 reach the target in most fits (0.9
    gave higher ESS per second than 0.8 or 0.95 here).

    Attributes
    ----------
    draws : int
        Draws per chain kept after tuning (first attempt).
    tune : int
        Tuning (warm-up) steps per chain.
    chains : int
        Independent chains (run on all cores).
    target_accept : float
        NUTS target acceptance probability of the first attempt.
    min_ess : int
        Bulk ESS every posterior parameter should reach (0 disables extending).
    max_draws : int
        Upper limit on draws per chain when extending.

    Examples
    --------
    >>> SamplerSettings(draws=500, min_ess=0).attempts()
    [(500, 0.9)]
    """

    draws: int = 1000
    tune: int = 1000
    chains: int = 4
    target_accept: float = 0.9
    min_ess: int = 1000
    max_draws: int = 4000

    def __post_init__(self) -> None:
        for name in ("draws", "tune", "chains", "max_draws"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise RebayesError(f"sampler setting {name}={value!r} must be a positive integer")
        if self.chains < 2:
            # R-hat needs at least two chains.
            raise RebayesError("sampler setting chains must be at least 2")
        if not 0 < self.target_accept < 1:
            raise RebayesError(
                f"sampler setting target_accept={self.target_accept!r} is not in (0, 1)"
            )
        if self.min_ess < 0:
            raise RebayesError(f"sampler setting min_ess={self.min_ess!r} is negative")

    def attempts(self) -> list[tuple[int, float]]:
        """(draws, target_accept) of each ESS extension; a divergence re-run comes on top."""
        out, draws = [(self.draws, self.target_accept)], self.draws * 2
        while self.min_ess and draws <= self.max_draws:
            out.append((draws, self.target_accept))
            draws *= 2
        return out
