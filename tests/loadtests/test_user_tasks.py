"""Each Locust user class runs its own task only: Locust gives a class the tasks of its bases too, so
a closed-loop task on a shared base made the open-loop user send closed-loop requests now and then
(and start its arrivals late). Checked in a child process: importing Locust patches the process."""

from __future__ import annotations

import textwrap

from tests.loadtests.conftest import run_child_check

CHECK = textwrap.dedent(
    """
    from loadtests.users import FreeUser, InternalUser, OpenLoopUser, ProUser, TierUser
    assert [t.__qualname__ for t in OpenLoopUser.tasks] == ["OpenLoopUser.next_task"], OpenLoopUser.tasks
    for user in (FreeUser, ProUser, InternalUser):
        assert [t.__qualname__ for t in user.tasks] == ["TierUser.next_task"], (user, user.tasks)
    print("ok")
    """
)


def test_the_open_loop_user_runs_its_arrival_loop_and_nothing_else():
    run_child_check(CHECK)
