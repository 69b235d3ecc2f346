"""``python -m skalds`` is the ``skalds`` command."""

import sys

from skalds.entrypoints.cli import main

if __name__ == "__main__":
    sys.exit(main())
