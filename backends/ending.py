"""How a run ended, said honestly: the outcome, the exit status and the cluster's condition.

A run is `verified` only when every step is; every other ending (a failed step, a gate, the
lock lost, Ctrl-C or a signal, an unexpected exception) is recorded as what it was, in the
exit status, the last line and the transcript (issue 14, finding 2). Because the operator
must know what a stopped run left behind, the ending also states, read from the cluster and
not remembered, whether new sessions are frozen (and by whom) and whether the manager is up.
"""

from __future__ import annotations

import asyncio
import signal

from .cluster import Cluster
from .errors import EXIT_FAILED, EXIT_GATE, EXIT_OK, ConnectError, GateError, MigrateError
from .lock import LockLost
from .state import RunState
from .statuses import Outcome
from .vault import Vault

CONDITION_TIMEOUT = 5.0   # seconds each read of the cluster's condition may take
# Ended by a signal: 128 + its number, as a shell reports a process killed by it.
EXIT_SIGNAL_BASE = 128


def signal_exit(signum: int) -> int:
    return EXIT_SIGNAL_BASE + signum


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def outcome_of(exc: BaseException) -> tuple[Outcome, int]:
    """The outcome and exit status of a run that stopped with `exc` (signals are handled apart)."""
    if isinstance(exc, LockLost):
        return Outcome.LOCK_LOST, EXIT_GATE
    if isinstance(exc, GateError):
        return Outcome.GATE, EXIT_GATE
    if isinstance(exc, MigrateError):
        # A service lost while a step runs is a failed step (exit 1, resumable), not a bad
        # configuration: exit 2 is for what stops a run before it starts.
        if isinstance(exc, ConnectError) or exc.exit_code == EXIT_OK:
            return Outcome.FAILED, EXIT_FAILED
        return Outcome.FAILED, exc.exit_code
    return Outcome.FAILED, EXIT_FAILED


async def cluster_condition(cluster: Cluster, state: RunState) -> str:
    """Are new sessions frozen (and by whom), is the manager up: each read bounded in time."""
    parts: list[str] = []
    st = state.steps.get("maintenance")
    ours = st is not None and st.journaled("applied") and not st.journaled("restored")
    try:
        # etcd itself, not the dry run's overlay: what the cluster is, not what it would be.
        frozen = await asyncio.wait_for(cluster.etcd.get("manager/status"), CONDITION_TIMEOUT)
    except (MigrateError, TimeoutError):
        parts.append("new sessions: unknown (etcd does not answer)")
    else:
        if frozen == "frozen":
            parts.append("new sessions FROZEN by this run (manager/status = frozen; a resume lifts it at the end, "
                         "or `rollback --steps maintenance`)" if ours else
                         "new sessions FROZEN (manager/status = frozen, not by this run)")
        else:
            parts.append(f"new sessions allowed (manager/status = {frozen or 'unset'})")
    mc = cluster.manager
    if mc.url is None:
        parts.append("manager: not checked (its URL is unknown)")
    else:
        try:
            up = await asyncio.wait_for(mc.is_up(), CONDITION_TIMEOUT)
        except TimeoutError:
            up = False
        reg = state.steps.get("registry")
        by_us = reg is not None and reg.journaled("manager-stopped") and not reg.journaled("manager-started")
        parts.append("manager up" if up else
                     "manager DOWN" + (" (stopped by the registry step of this run)" if by_us else ""))
    return ("dry run, nothing written: " if cluster.dry_run else "") + ", ".join(parts)


def unopened_notice(keys: list[str], vault: Vault) -> str:
    names = sorted(set(keys))
    shown = ", ".join(names[:5]) + (" ..." if len(names) > 5 else "")
    made = " (created just now: the key the run started with is missing)" if vault.created else ""
    return (f"{len(names)} sealed secret(s) of this run cannot be opened with the seal key {vault.key_path}{made}: "
            f"{shown}. They stay sealed; the run and its rollbacks go on without them, but those secret keys "
            "cannot be restored from the backup: restore the original key file, or set them by hand")
