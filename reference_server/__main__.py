"""``python -m reference_server``: start the reference gateway (see ``reference_server.cli``)."""

from __future__ import annotations

from reference_server.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
