"""``python -m earmark``: the same as the ``earmark`` command."""

from .cli import main

raise SystemExit(main())
