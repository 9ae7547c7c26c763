"""Allow ``python -m rebayes`` (same as the ``rebayes`` command)."""

import sys

from rebayes.cli import main

sys.exit(main())
