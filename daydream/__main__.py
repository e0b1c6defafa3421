"""``python -m daydream`` runs the command line."""

import sys

from daydream.cli import main

sys.exit(main())
