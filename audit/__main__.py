"""``python -m audit``: the same as the ``neuron-audit`` command."""

import sys

from .cli import main

sys.exit(main())
