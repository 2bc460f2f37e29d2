"""`etcd-write`: writing 10,000 image keys, ours vs Backend.AI 20.09's way, into the bench sandbox's etcd.

Baseline, reproduced with python-etcd3 exactly as 20.09 does it after a rescan
(`container_registry/base.py` @20.9.29: `for kvlist in chunked(sorted(all_updates.items()), 16):
await self.etcd.put_dict(dict(kvlist))`, and `AsyncEtcd.put_dict` = one
`run_in_executor(etcd_sync.transaction([], [puts], []))` per chunk, on a 5-worker pool):
sequential transactions of 16 puts. Ours: `EtcdStore.write_concurrently` (what the `registry`
step applies: transactions of `max_txn_ops` puts, several in flight); `EtcdStore.write` (the
same transactions one after another) is shown as `ours_serial`.

Both use the same gRPC client construction (`EtcdStore._make_client`, which works around
python-etcd3 issue #1876 on authenticated etcd), connected before the clock starts; each run
writes into a fresh namespace that is checked (10,000 keys, same content on both sides) and
deleted afterwards.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from backends.etcd import EtcdStore
from backends.images import tag_keys

from .env import BenchEnv
from .rescan import LABELS, PROJECT, REGISTRY
from .timing import Samples, atimed, compare, runs

NAME = "etcd-write"
KEYS = 10_000
CHUNK = 16                   # base.py's chunked(..., 16)
EXECUTOR_WORKERS = 5         # AsyncEtcd.__init__: ThreadPoolExecutor(max_workers=5)


def image_keys(n: int = KEYS) -> dict[str, str]:
    """`n` keys exactly as a rescan writes them (one tag = 11 keys, one repository = 1 more)."""
    out: dict[str, str] = {}
    for i in itertools.count():
        repo, tag = f"{PROJECT}/bench-kernel-{i // 5:04d}", f"3.{i % 5}-ubuntu20.04"
        out.update(tag_keys(REGISTRY, repo, tag, "sha256:" + uuid.uuid5(uuid.NAMESPACE_OID, f"{repo}:{tag}").hex * 2,
                            40_000 + i, LABELS))
        if len(out) >= n:
            break
    return dict(sorted(out.items())[:n])


def _chunked(items: list[tuple[str, str]], n: int) -> Iterator[tuple[tuple[str, str], ...]]:
    it = iter(items)
    while chunk := tuple(itertools.islice(it, n)):
        yield chunk


async def put_dict_2009(client: Any, executor: ThreadPoolExecutor, namespace: str,
                        dict_obj: Mapping[str, str]) -> None:
    """`AsyncEtcd.put_dict` @20.09 (GLOBAL scope, prefix ''): one transaction in the executor."""
    def mangle(k: str) -> bytes:
        if k.startswith("/"):
            k = k[1:]
        return f"/sorna/{namespace}/{k}".encode()

    loop = asyncio.get_running_loop()
    await loop.run_in_executor(executor, lambda: client.transaction(
        [], [client.transactions.put(mangle(k), str(v).encode("utf8")) for k, v in dict_obj.items()], []))


async def baseline_write(client: Any, executor: ThreadPoolExecutor, namespace: str,
                         updates: Mapping[str, str]) -> int:
    n = 0
    for kvlist in _chunked(sorted(updates.items()), CHUNK):
        await put_dict_2009(client, executor, namespace, dict(kvlist))
        n += 1
    return n


async def run(env: BenchEnv) -> dict[str, Any]:
    keys = image_keys()
    admin = env.etcd("bench-admin")
    await admin.connect()
    client = admin._client
    executor = ThreadPoolExecutor(max_workers=EXECUTOR_WORKERS, thread_name_prefix="etcd-2009")
    ours, serial, base = Samples(), Samples(), Samples()
    txns: dict[str, int] = {}
    same = True

    async def contents(ns: str) -> dict[str, str]:
        async with env.etcd(ns) as s:
            return await s.get_flat("")

    async def drop(ns: str) -> None:
        await admin._run(lambda c: c.delete_prefix(f"/sorna/{ns}/"))

    async def one_ours(samples: Samples, concurrent: bool) -> dict[str, str]:
        ns = f"bench-w-{uuid.uuid4().hex[:10]}"
        store: EtcdStore = env.etcd(ns)
        await store.connect()
        try:
            if concurrent:
                dt, n = await atimed(lambda: store.write_concurrently(keys))
                txns["ours"] = n
            else:
                dt, n = await atimed(lambda: store.write(keys))
                txns["ours_serial"] = n
            samples.add(dt)
            return await contents(ns)
        finally:
            await store.close()
            await drop(ns)

    try:
        for i in range(runs()):
            ns = f"bench-w-{uuid.uuid4().hex[:10]}"
            try:
                dt, n = await atimed(lambda ns=ns: baseline_write(client, executor, ns, keys))
                base.add(dt)
                txns["baseline"] = n
                got_base = await contents(ns)
            finally:
                await drop(ns)
            got_ours = await one_ours(ours, True)
            got_serial = await one_ours(serial, False)
            same = same and got_base == got_ours == got_serial and len(got_ours) == KEYS
            env.say(f"etcd-write run {i + 1}: baseline {base.values[-1]:.2f}s ours {ours.values[-1]:.2f}s "
                    f"ours_serial {serial.values[-1]:.2f}s")
    finally:
        executor.shutdown(wait=True)
        await admin.close()
    figures: dict[str, Any] = compare(ours, base)
    figures.update(serial.figures("ours_serial"))
    figures.update({"keys": KEYS, "same_keys": same, "txns_ours": txns.get("ours"),
                    "txns_baseline": txns.get("baseline"), "txn_size_ours": admin.max_txn_ops,
                    "txn_size_baseline": CHUNK, "target": "3x"})
    return figures


def main(env: BenchEnv) -> dict[str, Any]:
    env.sandbox()    # before the loop: Sandbox.up() runs its own asyncio.run()
    return asyncio.run(run(env))
