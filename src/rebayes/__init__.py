"""rebayes: re-analyse a published meta-analysis in Bayesian terms and audit its numbers."""

from rebayes.data import DataError, load_dataset, load_trials, trial_totals
from rebayes.errors import RebayesError

__all__ = ["DataError", "RebayesError", "load_dataset", "load_trials", "trial_totals"]
__version__ = "0.1.0"
