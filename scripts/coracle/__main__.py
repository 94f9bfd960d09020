"""`python -m coracle`: the same as the `coracle` command."""
import sys

from coracle.cli import main

sys.exit(main())
