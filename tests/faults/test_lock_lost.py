"""A run that loses the cluster lock stops writing, says so, and resumes once the lock is back.

Issue 14, finding 1: `ClusterLock._keepalive` set a `lost` flag nobody read, and python-etcd3's
`refresh_lease` answers an expired lease with TTL 0 instead of raising. A run stalled longer
than its 15 s lease (SIGSTOP, a paused VM, an etcd partition) kept writing while a second run
took the lock; both printed `run verified (exit 0)` and the cluster was left frozen.

1. The fence, against the real etcd: a lock whose lease is revoked behind its back (as etcd
   does when it expires) while another run takes the lock: the next write of the first run is
   refused by etcd itself (a transaction comparing the lock key's lease) and nothing is written;
   the error names the new holder.
2. A stall, in-process: the event loop is blocked longer than the lease (so its keep-alive
   cannot run) while another run takes the lock; afterwards the run knows before asking etcd
   that it may not write, and etcd confirms the lease is gone.
3. The scenario of the issue, with the real CLI: run A waits at the cleanup gate, is SIGSTOPped
   past its lease; run B (another operator, its own state) starts meanwhile and takes the lock;
   A is continued while B runs. A stops without writing anything more (its state file is
   untouched, no change applied), exit 3, its last line and transcript say `lock-lost`, name B
   and that A's maintenance freeze is still on. B runs to the end: `verified`, the only one,
   and says the cluster is still frozen (by A). Then A's same command resumes, lifts its freeze
   and ends with the cluster exactly as one uninterrupted migration leaves it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from conftest import etcd_store_for
from engine.support import EndState, Tail, cli_on, end_sessions, etcdctl, is_, lock_entry, read_events

from backends.etcd import EtcdStore
from backends.lock import DEFAULT_TTL, LOCK_ROOT, ClusterLock, LockLost
from backends.sandbox.layout import SandboxInfo

from .conftest import restore_services
from .states import Reference

pytestmark = [pytest.mark.docker]


def raw_get(info: SandboxInfo, key: str) -> str | None:
    r = etcdctl(info.ports.etcd, "get", key, "--print-value-only", user=info.creds.etcd_user,
                password=info.creds.etcd_password)
    return r.stdout.decode().rstrip("\n") or None


async def test_etcd_refuses_the_write_of_a_run_whose_lease_is_gone(etcd_ns: EtcdStore, sandbox: SandboxInfo) -> None:
    info = sandbox
    a = ClusterLock(etcd_ns, run_id="run-a")
    await a.acquire()
    etcd_ns.fence = a
    other = etcd_store_for(info, etcd_ns.namespace)
    await other.connect()
    b = ClusterLock(other, run_id="run-b")
    try:
        await etcd_ns.write({"k/before": "1"})
        assert raw_get(info, f"/sorna/{etcd_ns.namespace}/k/before") == "1"
        # What etcd does when the lease expires, done at once: revoke it; then B takes the lock.
        etcdctl(info.ports.etcd, "lease", "revoke", format(a.lease_id, "x"), user=info.creds.etcd_user,
                password=info.creds.etcd_password)
        await b.acquire()
        assert a.remaining() > 5        # locally, A still believes its lease has time left
        with pytest.raises(LockLost) as e:
            await etcd_ns.write({"k/after": "2"}, deletes=["k/before"])
        line = e.value.one_line()
        assert f"this run lost the cluster lock {LOCK_ROOT}{etcd_ns.namespace} (etcd refused a write: the lock key " \
               "is no longer on this run's lease) and stopped writing; the lock is now held by " in line, line
        assert f"(pid {os.getpid()}), run run-b; fix: wait for that run to finish, then run the same command " \
               "again" in line, line
        assert raw_get(info, f"/sorna/{etcd_ns.namespace}/k/after") is None
        assert raw_get(info, f"/sorna/{etcd_ns.namespace}/k/before") == "1"
        # Lost for good in this process: the next write is not even sent.
        with pytest.raises(LockLost):
            await etcd_ns.write({"k/later": "3"})
        with pytest.raises(LockLost):
            a.check()
    finally:
        etcd_ns.fence = None
        await a.release()
        await b.release()
        await other.close()
    assert lock_entry_ns(info, etcd_ns.namespace) is None


def lock_entry_ns(info: SandboxInfo, namespace: str) -> str | None:
    return raw_get(info, LOCK_ROOT + namespace)


async def test_a_stall_longer_than_the_lease_is_noticed_before_any_write(etcd_ns: EtcdStore,
                                                                         sandbox: SandboxInfo) -> None:
    info = sandbox
    ttl = 5
    a = ClusterLock(etcd_ns, run_id="run-a", ttl=ttl)
    await a.acquire()
    etcd_ns.fence = a
    took: list[int] = []

    def another_run() -> None:
        """Another process would do this: wait for the lock to be free, take it (its own loop)."""
        async def go() -> None:
            store = etcd_store_for(info, etcd_ns.namespace)
            await store.connect()
            b = ClusterLock(store, run_id="run-b")
            deadline = time.monotonic() + 30
            while lock_entry_ns(info, etcd_ns.namespace) is not None:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.1)
            await b.acquire()
            took.append(b.lease_id)
            b._task.cancel()        # keep the lock for the rest of the test without a loop running
            await store.close()
        asyncio.run(go())

    t = threading.Thread(target=another_run)
    t.start()
    try:
        await etcd_ns.write({"k/before": "1"})
        time.sleep(ttl + 3)  # noqa: ASYNC251 - the stall itself: nothing of this loop runs, not the keep-alive
        t.join(30)
        assert took, "the other run did not get the lock while this one stalled"
        with pytest.raises(LockLost, match=r"its lease was not renewed for \d+s, about its 5s time to live: this "
                                           r"process was stalled or etcd unreachable"):
            a.check()               # known locally, without asking etcd
        with pytest.raises(LockLost):
            await etcd_ns.write({"k/after": "2"})
        assert raw_get(info, f"/sorna/{etcd_ns.namespace}/k/after") is None
        definitive = await a.explain(LockLost(a.key, "local"))
        assert "its lease expired: it was not renewed for " in definitive.why
        assert definitive.holder is not None and definitive.holder["run_id"] == "run-b"
    finally:
        etcd_ns.fence = None
        await a.release()
        if took:
            etcdctl(info.ports.etcd, "lease", "revoke", format(took[0], "x"), user=info.creds.etcd_user,
                    password=info.creds.etcd_password)


def _last_line(text: str) -> str:
    return [ln for ln in text.splitlines() if ln.strip()][-1]


def test_a_run_paused_past_its_lease_stops_and_only_the_other_is_verified(fresh_sandbox: SandboxInfo, tmp_path: Path,
                                                                           reference: Reference) -> None:
    info = fresh_sandbox
    try:
        with cli_on(info, tmp_path / "operator-a") as ca, cli_on(info, tmp_path / "operator-b") as cb:
            a = ca.with_plan(ca.plan_copy("plan-a.toml", [('wait_for_sessions = "0s"', 'wait_for_sessions = "120s"')]))
            # A removes `lua` before the cleanup gate, so B's plan must not name it any more.
            b = cb.with_plan(cb.plan_copy("plan-b.toml", [('remove = ["lua"]', "remove = []")]))
            runner_a = a.start("run", "--yes")
            Tail(a.transcript).wait_for(is_("progress", step="cleanup", phase="wait"), runner_a,
                                        what="run A waiting at the cleanup gate")
            os.kill(runner_a.pid, signal.SIGSTOP)
            paused = time.monotonic()
            try:
                state_a = (a.state_dir / "state.json").read_bytes()
                events_a = len(read_events(a.transcript))
                while lock_entry(info) is not None:
                    assert time.monotonic() - paused < DEFAULT_TTL + 5, "A's lock outlived its lease"
                    time.sleep(0.2)
                assert end_sessions(info) == 2
                runner_b = b.start("run", "--yes")
                deadline = time.monotonic() + 60
                while (held := lock_entry(info)) is None or held[0]["pid"] != runner_b.pid:
                    assert time.monotonic() < deadline, "B did not take the lock"
                    assert runner_b.proc.poll() is None, runner_b.output()[-3000:]
                    time.sleep(0.05)
            finally:
                os.kill(runner_a.pid, signal.SIGCONT)
            rc_a = runner_a.finish(120)
            assert runner_b.proc.poll() is None, "B finished before A woke: the test shows no conflict"
            rc_b = runner_b.finish(300)
            out_a, out_b = runner_a.output(), runner_b.output()

            # A: stopped, told why, wrote nothing after the pause
            assert rc_a == 3, out_a[-3000:]
            last = _last_line(out_a)
            assert last.startswith("run lock-lost (exit 3): this run lost the cluster lock /bai-registry-migrate/lock/"
                                   "local (its lease expired: it was not renewed for "), last
            assert "and stopped writing; the lock is now held by " in last and f"(pid {runner_b.pid})" in last, last
            assert "; fix: wait for that run to finish, then run the same command again: this run resumes" in last
            assert "; cluster: new sessions FROZEN by this run (manager/status = frozen; a resume lifts it" in last
            assert "run verified" not in out_a
            assert (a.state_dir / "state.json").read_bytes() == state_a, "A saved its state after losing the lock"
            after = read_events(a.transcript)[events_a:]
            assert not [e for e in after if e["kind"] in ("applied", "plan")], after
            (fin,) = [e for e in after if e["kind"] == "run-finished"]
            assert (fin["status"], fin["exit_code"]) == ("lock-lost", 3) and "FROZEN by this run" in fin["cluster"]

            # B: the one run that applied and verified; it says the cluster is still frozen (by A)
            assert rc_b == 0, out_b[-3000:]
            assert _last_line(out_b).startswith("run verified (exit 0); cluster: new sessions FROZEN (manager/status "
                                                "= frozen, not by this run), manager up"), _last_line(out_b)
            verified = [e for c in (a, b) for e in read_events(c.transcript)
                        if e["kind"] == "run-finished" and e["status"] == "verified"]
            assert len(verified) == 1

            # A resumes once the lock is back: its freeze lifted, the cluster as one migration leaves it
            assert lock_entry(info) is None
            r = a.run("run", "--yes", timeout=300)
            assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
            assert "resuming run " in r.stdout
            assert _last_line(r.stdout) == "run verified (exit 0); cluster: new sessions allowed (manager/status = " \
                                           "running), manager up"
            diff = EndState.read(info).differences(reference.end)
            assert not diff, "\n".join(diff[:30])
    finally:
        restore_services(info)

