"""`python -m gateway.cli`: the `vehicle-gateway` command, run as a module."""

import sys

from gateway.cli import main

sys.exit(main())
