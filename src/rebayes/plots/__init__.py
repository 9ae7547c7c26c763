"""Figures for the report: matplotlib, rendered headless (Agg)."""

from rebayes.plots.forest import SummaryRow, forest_plot
from rebayes.plots.influence import influence_plot

__all__ = ["SummaryRow", "forest_plot", "influence_plot"]

# --- diagnostic and sensitivity figures. They reach PyMC through rebayes.bayes.quantities,
# so they load on first use and `import rebayes.plots` stays light.
_LAZY = {
    **dict.fromkeys(
        (
            "pareto_k_plot",
            "ppc_plot",
            "prior_from_tree",
            "prior_posterior_plot",
            "rank_plot",
            "trace_plot",
            "trial_ppc_plot",
        ),
        "rebayes.plots.diagnostic_plots",
    ),
    **dict.fromkeys(("posterior_overlay", "sensitivity_plot"), "rebayes.plots.sensitivity"),
    "decision_heatmap": "rebayes.plots.heatmap",
}
__all__ += [*_LAZY]


def __getattr__(name: str):  # noqa: D103 - module-level lazy attribute access
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rebayes.plots' has no attribute {name!r}")
