"""``python -m tdrdenoise``: the same as the ``tdrdenoise`` command."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
