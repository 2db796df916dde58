"""``python -m gateway``: the same as the ``c4f-gateway`` command."""

import sys

from gateway.cli import main

sys.exit(main())
