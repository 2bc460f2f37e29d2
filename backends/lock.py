"""One run per cluster: an etcd lease lock outside Backend.AI's `/sorna/` prefix.

The lock key is `/bai-registry-migrate/lock/<namespace>`, created only if absent (a
transaction on its create revision) and bound to a lease that a background task keeps alive.
If the holder dies (SIGKILL, dropped SSH link), the lease expires and the lock frees itself
within `ttl` seconds; nobody has to clean up by hand.

A holder that stalls longer than the lease (SIGSTOP, a paused VM, an etcd partition) has lost
the lock, and a second run may hold it by the time the first one wakes up. So the lock is a
fence for every write of the run (issue 14, finding 1):

- the run knows until when its lease is certainly alive: the moment it sent the last renewal
  that etcd answered, plus the TTL etcd answered with (etcd counts from when it received it,
  which is later). Past that, nothing is written until etcd confirms the lease again;
- python-etcd3's `refresh_lease` does not raise for an expired lease: etcd answers the
  keep-alive with a TTL of 0 (`LeaseKeepAliveResponse.TTL`, "the new time-to-live for the
  lease" in etcd's api/etcdserverpb/rpc.proto; tests/faults/test_lock_lost.py sees the 0),
  which is read here as "lost";
- every etcd write of the run is a transaction comparing the lock key's lease with ours
  (`Compare` with target `LEASE` in rpc.proto; the sandbox runs etcd 3.4), so a write after
  the loss is refused by etcd itself, even if the lock key was deleted by hand;
- PostgreSQL commits and the manager's stop/start wait for `ensure()`, and the state file is
  saved only after `check()`;
- once lost, the loss is final for this process: callbacks (the runner stops its main task)
  are told, and the error names who holds the lock now. A new invocation resumes from the
  saved state.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import os
import socket
import time
from collections.abc import Callable
from typing import Any

from .errors import GateError
from .etcd import EtcdStore

LOCK_ROOT = "/bai-registry-migrate/lock/"
DEFAULT_TTL = 15
RELEASE_RETRY = 3.0     # seconds a release keeps trying while etcd does not answer
MARGIN = 2.0            # a write is not started with less than this left of the lease
RETRY = 1.0             # keep-alive interval after a failed renewal


def _who(holder: dict[str, Any]) -> str:
    return f"{holder.get('user', '?')}@{holder.get('host', '?')} (pid {holder.get('pid', '?')})"


class LockHeld(GateError):
    def __init__(self, holder: dict[str, Any], key: str) -> None:
        since = holder.get("since")
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since)) if isinstance(since, (int, float)) else "?"
        super().__init__(f"another migration run holds the cluster lock {key}: {_who(holder)}, since {when}, "
                         f"run {holder.get('run_id', '?')}",
                         fix="wait for it to finish; if that process is gone, the lock frees itself "
                             "within its lease time")
        self.holder = holder


class LockLost(GateError):
    """This run no longer holds the cluster lock; it stopped writing (exit 3, resumable)."""

    def __init__(self, key: str, why: str, *, holder: dict[str, Any] | None = None) -> None:
        now = (f"; the lock is now held by {_who(holder)}, run {holder.get('run_id', '?')}" if holder
               else "")
        fix = ("wait for that run to finish, then run the same command again: this run resumes from its saved "
               "state" if holder else
               "check etcd and what paused this process, then run the same command again: it resumes from the "
               "saved state")
        super().__init__(f"this run lost the cluster lock {key} ({why}) and stopped writing{now}", fix=fix)
        self.key = key
        self.why = why
        self.holder = holder


class ClusterLock:
    def __init__(self, store: EtcdStore, *, run_id: str, ttl: int = DEFAULT_TTL) -> None:
        self.store = store
        self.run_id = run_id
        self.ttl = ttl
        self.key = f"{LOCK_ROOT}{store.namespace}"
        self._lease: Any = None
        self.lease_id = 0
        self._task: asyncio.Task[None] | None = None
        self._since = time.time()
        self._valid_until = 0.0           # time.monotonic() until which the lease is certainly alive
        self._confirmed_at = 0.0
        self.lost: LockLost | None = None
        self._definitive = False
        self._on_lost: list[Callable[[LockLost], None]] = []

    def holder_info(self) -> dict[str, Any]:
        return {"user": getpass.getuser(), "host": socket.gethostname(), "pid": os.getpid(),
                "since": time.time(), "run_id": self.run_id}

    async def acquire(self) -> None:
        info = self.holder_info()
        self._since = info["since"]
        value = json.dumps(info)
        key = self.key
        ttl = self.ttl

        def _try(c: Any) -> tuple[bool, Any, Any]:
            lease = c.lease(ttl)
            ok, responses = c.transaction(
                compare=[c.transactions.create(key) == 0],
                success=[c.transactions.put(key, value, lease=lease)],
                failure=[c.transactions.get(key)],
            )
            if not ok:
                c.revoke_lease(lease.id)
                current = None
                with contextlib.suppress(Exception):
                    current = responses[0][0][0]
                return False, None, current
            return True, lease, None

        sent = time.monotonic()
        ok, lease, current = await self.store._run(_try)
        if not ok:
            try:
                holder = json.loads(current.decode()) if current else {}
            except ValueError:
                holder = {}
            raise LockHeld(holder, key)
        self._lease = lease
        self.lease_id = int(lease.id)
        self._valid_until = sent + ttl
        self._confirmed_at = sent
        self._task = asyncio.create_task(self._keepalive(), name="cluster-lock-keepalive")

    async def update_holder(self) -> None:
        """Rewrites the holder record (same lease), e.g. once the run id is known; only if it is still ours."""
        if self._lease is None:
            return
        await self.ensure()
        value = json.dumps({**self.holder_info(), "since": self._since})
        if not await self.store.put_on_lease(self.key, value, self.lease_id):
            raise await self.refused()

    # -- is it still ours? ---------------------------------------------------------------
    def on_lost(self, callback: Callable[[LockLost], None]) -> None:
        self._on_lost.append(callback)

    def _lose(self, why: str, holder: dict[str, Any] | None = None, *, definitive: bool = True) -> LockLost:
        """Records the loss (final for this process) and tells the callbacks, once. A loss known
        only locally (`check`) may be replaced by etcd's definitive answer (`explain`)."""
        first = self.lost is None
        if first or (definitive and not self._definitive):
            self.lost = LockLost(self.key, why, holder=holder)
            self._definitive = definitive
        assert self.lost is not None
        if first:
            for cb in self._on_lost:
                with contextlib.suppress(Exception):
                    cb(self.lost)
        return self.lost

    def remaining(self) -> float:
        return self._valid_until - time.monotonic()

    def check(self) -> None:
        """Synchronous, local: raises unless the lease is certainly alive for a while yet."""
        if self.lost is not None:
            raise self.lost
        if self._lease is not None and self.remaining() < MARGIN:
            unconfirmed = time.monotonic() - self._confirmed_at
            raise self._lose(f"its lease was not renewed for {unconfirmed:.0f}s, about its {self.ttl}s time to "
                             "live: this process was stalled or etcd unreachable", definitive=False)

    async def ensure(self) -> None:
        """Before a write: returns while the lease is certainly alive, renewing it first when that
        is no longer known. Raises LockLost once it is gone, or the store's ConnectError while
        etcd does not answer (the write would fail the same way)."""
        if self.lost is not None:
            raise self.lost
        if self._lease is None or self.remaining() >= MARGIN:
            return
        await self._refresh()

    async def _refresh(self) -> None:
        lease_id = self.lease_id
        sent = time.monotonic()
        responses = await self.store._run(lambda c: list(c.refresh_lease(lease_id)))
        ttl = int(responses[0].TTL) if responses else 0
        if ttl <= 0:
            unconfirmed = sent - self._confirmed_at
            holder = await self._holder()
            raise self._lose(f"its lease expired: it was not renewed for {unconfirmed:.0f}s, longer than its "
                             f"{self.ttl}s time to live", holder)
        if self.lost is not None:
            return      # a loss already acted on stays final for this process
        self._valid_until = sent + ttl
        self._confirmed_at = sent

    async def _holder(self) -> dict[str, Any] | None:
        """The holder record now, if another lease holds the key (best effort: None if unknown)."""
        key, mine = self.key, self.lease_id

        def _get(c: Any) -> tuple[bytes | None, int]:
            val, meta = c.get(key)
            return val, int(getattr(meta, "lease_id", 0) or 0) if meta is not None else 0

        try:
            val, lease = await self.store._run(_get)
        except Exception:  # noqa: BLE001 - only used to say more in the error
            return None
        if val is None or lease == mine:
            return None
        try:
            holder = json.loads(val.decode())
        except ValueError:
            return {}
        return holder if isinstance(holder, dict) else {}

    async def refused(self) -> LockLost:
        """etcd refused a write because the lock key is no longer on our lease: lost for good."""
        holder = await self._holder()
        return self._lose("etcd refused a write: the lock key is no longer on this run's lease", holder)

    async def explain(self, err: LockLost) -> LockLost:
        """A loss known only locally (`check`), made definitive: asks etcd whether the lease is
        gone and who holds the lock now. Returns the error to report."""
        if self._definitive and self.lost is not None:
            return self.lost
        try:
            await self._refresh()
        except LockLost as e:
            return e
        except Exception:  # noqa: BLE001 - etcd does not answer: the local reason stands
            return self.lost or err
        # The lease is alive after all (etcd had extended it): the run stopped on the safe side.
        return LockLost(self.key, f"{err.why}; etcd has since confirmed the lease, but this invocation had "
                                  "already stopped writing")

    async def _keepalive(self) -> None:
        interval = max(1.0, self.ttl / 3)
        while self.lost is None:
            healthy = self.remaining() > self.ttl - interval - RETRY
            await asyncio.sleep(interval if healthy else RETRY)
            try:
                await self._refresh()
            except LockLost:
                return
            except Exception:  # noqa: BLE001 - etcd away: writes wait on ensure(); try again soon
                continue

    async def release(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        if self._lease is not None:
            lease, self._lease = self._lease, None
            # etcd may have just come back from an outage that failed the run (its client
            # reconnects with a backoff of about a second): retry briefly rather than leave the
            # next run refused for a whole lease time. Revoking our lease deletes only keys
            # attached to it: a lock another run holds now is untouched.
            deadline = time.monotonic() + RELEASE_RETRY
            while True:
                try:
                    await self.store._run(lambda c: c.revoke_lease(lease.id))
                    return
                except Exception:  # noqa: BLE001 - the lease expires by itself in the end
                    if time.monotonic() >= deadline or self.lost is not None:
                        return
                    await asyncio.sleep(0.25)

    async def __aenter__(self) -> ClusterLock:
        await self.acquire()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.release()


async def read_holder(store: EtcdStore) -> dict[str, Any] | None:
    key = f"{LOCK_ROOT}{store.namespace}"
    val, _ = await store._run(lambda c: c.get(key))
    if val is None:
        return None
    try:
        return json.loads(val.decode())
    except ValueError:
        return {}
