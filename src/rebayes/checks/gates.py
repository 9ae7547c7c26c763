"""The convergence gates: one set of thresholds, read and rendered everywhere.

Every verdict on a fit -- ``rebayes fit``'s "ok", ``--strict``, the report's green and red
cells, ``FitSummary.reliable`` -- comes from :func:`rebayes.checks.convergence.diagnose` judged by a
:class:`Thresholds`, and every sentence that states the gates is :meth:`Thresholds.sentence`,
so a changed threshold changes every output at once.

References
----------
Vehtari A, Gelman A, Simpson D, Carpenter B, Bürkner P-C. Rank-normalization, folding, and
localization: an improved R-hat for assessing convergence of MCMC. Bayesian Analysis.
2021;16:667-718. doi:10.1214/20-BA1221.
Betancourt M. Diagnosing suboptimal cotangent disintegrations in Hamiltonian Monte Carlo.
arXiv:1604.00695. 2016.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["DEFAULT_THRESHOLDS", "GATES", "Thresholds"]


@dataclass(frozen=True)
class Thresholds:
    """Pass/fail thresholds of the convergence gates and of the Pareto k flag.

    Attributes
    ----------
    rhat_max : float
        Largest acceptable rank-normalised split R-hat (Vehtari et al. 2021: 1.01).
    ess_min : float
        Smallest acceptable bulk and tail ESS (Vehtari et al. 2021: 100 per chain, 4 chains).
    ebfmi_min : float
        Smallest acceptable E-BFMI of any chain (Betancourt 2016: 0.3).
    divergences_max : int
        Largest acceptable number of divergent transitions after warm-up (0).
    pareto_k_max : float
        Pareto k above which a trial's PSIS-LOO estimate is unreliable (Vehtari et al. 2024).

    Examples
    --------
    >>> Thresholds().sentence()
    'R-hat ≤ 1.01, bulk and tail ESS ≥ 400, no divergent transitions, E-BFMI ≥ 0.3'
    """

    rhat_max: float = 1.01
    ess_min: float = 400.0
    ebfmi_min: float = 0.3
    divergences_max: int = 0
    pareto_k_max: float = 0.7

    def label(self, gate: str) -> str:
        """Wording of one gate of :data:`GATES` (``"R-hat <= 1.01"``)."""
        return GATES[gate].format(**asdict(self))

    def sentence(self) -> str:
        """All gates in one phrase, for pages and help texts."""
        divergences = ("no divergent transitions" if self.divergences_max == 0
                       else f"at most {self.divergences_max} divergent transitions")
        return (f"R-hat ≤ {self.rhat_max:g}, bulk and tail ESS ≥ {self.ess_min:g}, "
                f"{divergences}, E-BFMI ≥ {self.ebfmi_min:g}")


DEFAULT_THRESHOLDS = Thresholds()

#: Gate names, in the order they are reported, with their wording.
GATES: dict[str, str] = {
    "rhat": "R-hat <= {rhat_max:g}",
    "ess_bulk": "bulk ESS >= {ess_min:g}",
    "ess_tail": "tail ESS >= {ess_min:g}",
    "divergences": "divergences <= {divergences_max:d}",
    "ebfmi": "E-BFMI >= {ebfmi_min:g}",
}
