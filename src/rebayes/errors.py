"""The one exception family a user sees: every message is a single line saying what to fix."""


class RebayesError(ValueError):
    """Base of all errors caused by user input (data, priors, specs, names, paths)."""


class DataNote(UserWarning):
    """Something rebayes assumed while reading a user's file (one line, not an error).

    The command prints each on stderr as ``rebayes COMMAND: note: ...``; in Python it is a
    warning of this category.
    """
