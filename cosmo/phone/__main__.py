"""``python -m cosmo.phone``: the same as ``cosmo phone``."""

import sys

from cosmo.phone.command import main

sys.exit(main())
