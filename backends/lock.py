"""One run per cluster: an etcd lease lock outside Backend.AI's `/sorna/` prefix.

The lock key is `/bai-registry-migrate/lock/<namespace>`, created only if absent (a
transaction on its create revision) and bound to a lease that a background task keeps alive.
If the holder dies (SIGKILL, dropped SSH link), the lease expires and the lock frees itself
within `ttl` seconds; nobody has to clean up by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import os
import socket
import time
from typing import Any

from .errors import GateError
from .etcd import EtcdStore

LOCK_ROOT = "/bai-registry-migrate/lock/"
DEFAULT_TTL = 15
RELEASE_RETRY = 3.0     # seconds a release keeps trying while etcd does not answer


class LockHeld(GateError):
    def __init__(self, holder: dict[str, Any], key: str) -> None:
        since = holder.get("since")
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since)) if isinstance(since, (int, float)) else "?"
        who = f"{holder.get('user', '?')}@{holder.get('host', '?')} (pid {holder.get('pid', '?')})"
        super().__init__(f"another migration run holds the cluster lock {key}: {who}, since {when}, "
                         f"run {holder.get('run_id', '?')}",
                         fix="wait for it to finish; if that process is gone, the lock frees itself "
                             "within its lease time")
        self.holder = holder


class ClusterLock:
    def __init__(self, store: EtcdStore, *, run_id: str, ttl: int = DEFAULT_TTL) -> None:
        self.store = store
        self.run_id = run_id
        self.ttl = ttl
        self.key = f"{LOCK_ROOT}{store.namespace}"
        self._lease: Any = None
        self._task: asyncio.Task[None] | None = None
        self._since = time.time()
        self.lost = False

    def holder_info(self) -> dict[str, Any]:
        return {"user": getpass.getuser(), "host": socket.gethostname(), "pid": os.getpid(),
                "since": time.time(), "run_id": self.run_id}

    async def acquire(self) -> None:
        info = self.holder_info()
        self._since = info["since"]
        value = json.dumps(info)
        key = self.key

        def _try(c: Any) -> tuple[bool, Any, Any]:
            lease = c.lease(self.ttl)
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

        ok, lease, current = await self.store._run(_try)
        if not ok:
            try:
                holder = json.loads(current.decode()) if current else {}
            except ValueError:
                holder = {}
            raise LockHeld(holder, key)
        self._lease = lease
        self._task = asyncio.create_task(self._keepalive(), name="cluster-lock-keepalive")

    async def update_holder(self) -> None:
        """Rewrites the holder record (same lease), e.g. once the run id is known."""
        if self._lease is None:
            return
        value = json.dumps({**self.holder_info(), "since": self._since})
        key, lease = self.key, self._lease
        await self.store._run(lambda c: c.put(key, value, lease=lease))

    async def _keepalive(self) -> None:
        interval = max(1.0, self.ttl / 3)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.store._run(lambda _c: self._lease.refresh())
            except Exception:  # noqa: BLE001 - reported through `lost`, the run decides
                self.lost = True

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
            # next run refused for a whole lease time.
            deadline = time.monotonic() + RELEASE_RETRY
            while True:
                try:
                    await self.store._run(lambda c: c.revoke_lease(lease.id))
                    return
                except Exception:  # noqa: BLE001 - the lease expires by itself in the end
                    if time.monotonic() >= deadline:
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
