"""``python -m cosmo``: the same as the ``cosmo`` command."""

import sys

from cosmo.cli import main

sys.exit(main())
