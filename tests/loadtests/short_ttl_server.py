"""Run the reference server with task tokens that live N seconds: ``short_ttl_server.py N <server args>``.

Test-only: the server has no TTL option (60 s, as documented), so this launcher hands its CLI a
ServerConfig whose token_ttl_s is N. The production code stays as it is.
"""

from __future__ import annotations

import functools
import sys

import reference_server.cli as cli
from reference_server.config import ServerConfig

if __name__ == "__main__":
    ttl = int(sys.argv[1])
    # The CLI builds its ServerConfig by name; swap the name in its namespace for one with a short TTL.
    vars(cli)["ServerConfig"] = functools.partial(ServerConfig, token_ttl_s=ttl)
    sys.exit(cli.main(sys.argv[2:]))
