"""The one exception family a user sees: every message is a single line saying what to fix."""


class RebayesError(ValueError):
    """Base of all errors caused by user input (data, priors, specs, names, paths)."""
