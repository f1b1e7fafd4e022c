"""``python -m privsdk``: the same as the ``privsdk`` command."""

import sys

from privsdk.cli import main

sys.exit(main())
