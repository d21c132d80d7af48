"""``python -m bayesmlm``: the command line."""

import sys

from bayesmlm.cli import main

sys.exit(main())
