"""``python -m spanlake``: the same as the ``spanlake`` command."""

from spanlake.cli import main

raise SystemExit(main())
