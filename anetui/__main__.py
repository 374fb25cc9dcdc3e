"""`python -m anetui` is `anetui`."""

import sys

from anetui.cli import main

sys.exit(main())
