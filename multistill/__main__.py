"""``python -m multistill`` runs the ``multistill`` command line (see :mod:`multistill.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
