"""`python -m conformance.mutants`: the mutation self-check without the CLI (see `cli.main`)."""

import sys

from .cli import main

sys.exit(main())
