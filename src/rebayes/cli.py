"""Command-line interface (placeholder, filled in below)."""


def main(argv: list[str] | None = None) -> int:
    """Run the ``rebayes`` command."""
    return 0
