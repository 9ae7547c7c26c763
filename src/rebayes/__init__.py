"""rebayes: re-analyse a published meta-analysis in Bayesian terms and audit its numbers."""

from rebayes.data import DataError, load_dataset, load_trials, trial_totals
from rebayes.direction import Direction
from rebayes.errors import RebayesError
from rebayes.schema import DatasetSchema

__all__ = [
    "DataError",
    "DatasetSchema",
    "Direction",
    "RebayesError",
    "load_dataset",
    "load_trials",
    "trial_totals",
]
__version__ = "0.1.0"

# --- Bayesian core. Specs and priors are light; fitting imports PyMC and nutpie,
# so those names load on first use and `import rebayes` stays fast.
from rebayes.priors import PRIOR_SETS, PriorSet, get_prior, load_prior_file  # noqa: E402
from rebayes.spec import AnalysisSpec, SpecError, load_script  # noqa: E402

_LAZY = {
    "Fit": "rebayes.inference",
    "SamplerSettings": "rebayes.inference",
    "fit": "rebayes.inference",
    "fit_priors": "rebayes.inference",
    "build_design": "rebayes.design",
    "summarize": "rebayes.effects",
    "run_script": "rebayes.cli.fit",
    "resolve_spec": "rebayes.analyses",
    "analysis_specs": "rebayes.analyses",
    "coefficients": "rebayes.coefficients",
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
    **dict.fromkeys(
        (
            "DiagnosticReport",
            "diagnose",
            "loo_by_trial",
            "loo_compare",
            "ppc_table",
            "shared_data_groups",
        ),
        "rebayes.diagnostics",
    ),
    **dict.fromkeys(("Comparison", "compare_fits", "compare_posteriors"), "rebayes.compare"),
}
_LAZY.update(_DIAGNOSTICS)
__all__ += [*_DIAGNOSTICS]
