"""The conform42 LLM load harness as a locustfile: ``locust -f loadtests/locustfile.py --host URL``.

Users: FreeUser, ProUser, InternalUser (closed loop, one API key per tier, shared by that tier's
users) and OpenLoopUser (fixed or Poisson arrivals; off unless --open-loop-rate > 0). Their numbers
are fixed by --free-users / --pro-users / --internal-users, so pass -u with their sum (plus 1 for the
open loop), or use ``python -m loadtests``, which does. Options: ``locust -f loadtests/locustfile.py
--help`` (group "conform42"); usage: loadtests/README.md.
"""

from __future__ import annotations

from loadtests import hooks  # noqa: F401  (registers the event listeners)
from loadtests.sweep_shape import SweepShape  # switched off at init without --sweep
from loadtests.users import FreeUser, InternalUser, OpenLoopUser, ProUser

__all__ = ["FreeUser", "InternalUser", "OpenLoopUser", "ProUser", "SweepShape"]
