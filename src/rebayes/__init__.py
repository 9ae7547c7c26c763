"""rebayes: re-analyse a published meta-analysis in Bayesian terms and audit its numbers."""

from rebayes.data.direction import Direction
from rebayes.data.schema import DatasetSchema
from rebayes.data.trial_table import TrialTable
from rebayes.data.trials import DataError, load_dataset, load_table, load_trials, trial_totals
from rebayes.errors import RebayesError

__all__ = [
    "DataError",
    "DatasetSchema",
    "Direction",
    "RebayesError",
    "TrialTable",
    "load_dataset",
    "load_table",
    "load_trials",
    "trial_totals",
]
__version__ = "0.1.0"

# --- Bayesian core. Specs and priors are light; fitting imports PyMC and nutpie,
# so those names load on first use and `import rebayes` stays fast.
from rebayes.bayes.priors import PRIOR_SETS, PriorSet, get_prior, load_prior_file  # noqa: E402
from rebayes.bayes.spec import AnalysisSpec, SpecError, load_script  # noqa: E402

_LAZY = {
    "Fit": "rebayes.bayes.fit",
    "SamplerSettings": "rebayes.bayes.settings",
    "fit": "rebayes.bayes.fit",
    "fit_priors": "rebayes.bayes.fit",
    "build_design": "rebayes.bayes.design",
    "summarize": "rebayes.bayes.summary",
    "run_script": "rebayes.cli.fit",
    "resolve_spec": "rebayes.bayes.analyses",
    "analysis_specs": "rebayes.bayes.analyses",
    "coefficients": "rebayes.bayes.coefficients",
    # RevMan's analysis, lazy like the rest so that `import rebayes` stays light.
    "analyze": "rebayes.frequentist.pooling",
}
__all__ += [
    "AnalysisSpec",
    "PRIOR_SETS",
    "PriorSet",
    "SpecError",
    "get_prior",
    "load_prior_file",
    "load_script",
    *_LAZY,
]


def __getattr__(name: str):  # noqa: D103 - module-level lazy attribute access
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rebayes' has no attribute {name!r}")


# --- diagnostics and comparison across priors; lazy like the sampling parts.
_DIAGNOSTICS = {
    **dict.fromkeys(("DiagnosticReport", "diagnose"), "rebayes.checks.convergence"),
    **dict.fromkeys(("loo_by_trial", "loo_compare", "shared_data_groups"), "rebayes.checks.loo"),
    **dict.fromkeys(("ppc_table", "trial_ppc_table"), "rebayes.checks.ppc"),
    **dict.fromkeys(("Comparison", "compare_fits", "compare_posteriors"),
                    "rebayes.sensitivity.comparison"),
}
_LAZY.update(_DIAGNOSTICS)
__all__ += [*_DIAGNOSTICS]
