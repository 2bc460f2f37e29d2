"""PostgreSQL stops in the middle of the `allowlists` apply: its one transaction, as the runner runs it.

To stop the database *inside* the transaction rather than before or after it (it takes
milliseconds), the test holds `SELECT ... FOR UPDATE` on one domain row from another session:
the runner's transaction, with every domain row it could lock already locked, waits on that
row (seen in pg_stat_activity). PostgreSQL is then stopped with a fast shutdown, which ends
every session, the runner's in the middle of its transaction. Afterwards:

- every domain row is exactly old(allowlists): an uncommitted transaction is all-or-nothing;
- the runner's verdict names PostgreSQL, says the connection was lost during the domain update
  and that the transaction was not committed, and tells to check the server and run the same
  command again;
- after PostgreSQL is started again, the same command completes the migration with the
  reference end state.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest
from engine.support import Cli, EndState, Tail, domain_row_locked, is_

from backends.sandbox.layout import SandboxInfo

from .conftest import free_lock_of_dead_runner
from .outage import start_postgres, stop_postgres
from .states import ClusterState, Reference, last_error_line, old_or_new, step_status

pytestmark = [pytest.mark.docker]


def runner_waits_on_a_domain_row(info: SandboxInfo) -> bool:
    async def go() -> bool:
        conn = await asyncpg.connect(info.pg_dsn())
        try:
            return bool(await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND application_name = 'bai-registry-migrate' AND query LIKE '%FROM domains%FOR UPDATE%'"))
        finally:
            await conn.close()
    return asyncio.run(go())


def test_postgres_stops_inside_the_allowlists_transaction(fcli: Cli, reference: Reference) -> None:
    info = fcli.info
    old, new = reference.around("allowlists")
    tail = Tail(fcli.transcript)
    with domain_row_locked(info, "default", until_shutdown=True):
        runner = fcli.start("run", "--yes")
        tail.wait_for(is_("step-status", step="allowlists", status="applying"), runner, what="allowlists applying")
        deadline = time.monotonic() + 8
        while not runner_waits_on_a_domain_row(info):
            assert time.monotonic() < deadline, "the runner never waited on the locked row"
            time.sleep(0.02)
        stop_postgres(info)
    rc = runner.finish(60)
    start_postgres(info)

    out = runner.output()
    assert rc == 1, out[-3000:]     # a service lost mid-step: a failed (resumable) step, exit 1
    line = last_error_line(out)
    assert f"PostgreSQL at 127.0.0.1:{info.ports.postgres}" in line and "during the domain update" in line, line
    assert "the transaction was not committed" in line, line
    assert "; fix: check that the database server is up, then run the same command again" in line, line
    assert old_or_new(ClusterState.read(info), old, new, "PostgreSQL stopped in the transaction") == "old"
    assert step_status(fcli, "allowlists") == ("failed", ["backup"])

    free_lock_of_dead_runner(info, runner.pid)
    r = fcli.run("run", "--yes")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    diff = EndState.read(info).differences(reference.end)
    assert not diff, "\n".join(diff[:30])
