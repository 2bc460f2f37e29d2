"""The registry answers 500, 429 with Retry-After, slowly, or drops the connection.

A fault-injecting proxy (fault_proxy.py) sits on 127.0.0.1 in front of the sandbox's Harbor
stand-in, and a copy of the plan's registry JSON points at it. Faults are programmed on the
manifest requests of the rescan (`/v2/<repo>/manifests/<digest>`), which preflight never
makes, so each fault hits the registry step and nothing else.

Transient faults (one run, every kind at once on different repositories): 500 twice, 429 with
`Retry-After: 1` once, two dropped connections, and 0.3 s of delay on twenty requests. The
registry client retries each (waiting at least the second the 429 asked for) and the full
migration completes, through the proxy, with the reference end state -- except, by design,
the registry URL it was told to use.

Persistent faults (500, then 429, then dropped connections, each on every manifest request, in
three invocations of the same command): each time the rescan fails before anything is written
(the store is old(registry) exactly), and the runner's one-line verdict says the rescan of the
target failed, quotes the request and what the registry answered after how many attempts, and
tells what to do. Once the registry is healthy again, the same command (`--steps
preflight,maintenance,registry`, the steps that talk to the registry API; the full migration
through the proxy is the transient test's) completes with new(registry), registry URL aside.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from engine.support import Cli, EndState

from .conftest import free_lock_of_dead_runner
from .fault_proxy import Delay, Drop, Fault, FaultProxy, Status
from .states import ClusterState, Reference, last_error_line, old_or_new

pytestmark = [pytest.mark.docker]

URL_KEY = b"config/docker/registry/cr.backend.ai"
MANIFESTS = r"^/v2/.+/manifests/"
SCAN_STEPS = "preflight,maintenance,registry"


@pytest.fixture
def proxy(fcli: Cli) -> Iterator[FaultProxy]:
    with FaultProxy(fcli.info.harbor_url) as p:
        yield p


def via_proxy(c: Cli, proxy: FaultProxy) -> Cli:
    return c.with_plan(c.plan_copy("plan-proxy.toml", [(f'"": "{c.info.harbor_url}"', f'"": "{proxy.url}"')]))


def with_url(etcd: dict[bytes, bytes], url: str) -> dict[bytes, bytes]:
    assert URL_KEY in etcd
    return {**etcd, URL_KEY: url.encode()}


def test_transient_faults_are_retried_and_the_migration_completes(fcli: Cli, reference: Reference,
                                                                  proxy: FaultProxy) -> None:
    c = via_proxy(fcli, proxy)
    proxy.add(r"^/v2/stable/python/manifests/", Status(500), times=2)
    proxy.add(r"^/v2/stable/r-base/manifests/", Status(429, {"Retry-After": "1"}), times=1)
    proxy.add(r"^/v2/community/julia/manifests/", Drop(), times=2)
    proxy.add(MANIFESTS, Delay(0.3), times=20)
    r = c.run("run", "--yes")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]

    log = proxy.log()
    def after(entry_path: str, t: float) -> list[float]:
        return [e.t - t for e in log if e.path == entry_path and e.t > t and e.action != "drop"
                and e.status == 200]
    for action, n in (("status 500", 2), ("status 429", 1), ("drop", 2)):
        hit = [e for e in log if e.action == action]
        assert len(hit) == n, (action, hit)
        for e in hit:
            assert after(e.path, e.t), f"{action} on {e.path} was never retried successfully"
    [e429] = [e for e in log if e.action == "status 429"]
    assert min(after(e429.path, e429.t)) >= 1.0, "the client did not wait for Retry-After"
    assert sum(e.action == "delay 0.3" for e in log) == 20

    want = dataclasses.replace(reference.end, etcd=with_url(reference.end.etcd, proxy.url))
    diff = EndState.read(c.info).differences(want)
    assert not diff, "\n".join(diff[:30])


PERSISTENT: dict[str, tuple[Fault, str, str]] = {
    "500": (Status(500), "HTTP 500 after 4 attempts: injected fault 500",
            "; fix: the registry keeps failing on its side: check its health (Harbor's core and registry logs), "
            "then run the same command again"),
    "429": (Status(429, {"Retry-After": "1"}), "rate limited (429) after 4 attempts: injected fault 429",
            "; fix: the registry is rate-limiting this host: wait a few minutes (or raise its rate limit), then "
            "run the same command again"),
    "drop": (Drop(), "RemoteProtocolError (Server disconnected without sending a response.) after 4 attempts",
             "; fix: check that the registry URL is reachable from this host"),
}


def test_persistent_faults_fail_the_rescan_before_any_write(fcli: Cli, reference: Reference,
                                                            proxy: FaultProxy) -> None:
    c = via_proxy(fcli, proxy)
    old, new = reference.around("registry")
    pid = None
    for kind, (fault, what, fix) in PERSISTENT.items():
        proxy.clear()
        proxy.add(MANIFESTS, fault)
        if pid is not None:
            free_lock_of_dead_runner(c.info, pid)
        runner = c.start("run", "--yes", "--steps", SCAN_STEPS, log=f"run-{kind}.log")
        rc, pid = runner.finish(120), runner.pid
        out = runner.output()
        assert rc != 0, out[-3000:]
        line = last_error_line(out)
        assert line.startswith(f"bai-registry-migrate: the rescan of cr.backend.ai at {proxy.url} failed, "
                               f"nothing was written: GET {proxy.url}/v2/"), line
        assert what in line and line.endswith(fix), (kind, line)
        assert old_or_new(ClusterState.read(c.info), old, new, f"persistent {kind}") == "old"
        per_path: dict[str, int] = {}
        for e in proxy.log():
            if e.action != "forward":
                per_path[e.path] = per_path.get(e.path, 0) + 1
        assert max(per_path.values()) >= 4, per_path        # every attempt of one request met the fault

    proxy.clear()
    free_lock_of_dead_runner(c.info, pid)
    r = c.run("run", "--yes", "--steps", SCAN_STEPS)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    now = ClusterState.read(c.info)
    assert now.store_differences(dataclasses.replace(new, etcd=with_url(new.etcd, proxy.url))) == []
    assert now.agents == new.agents
