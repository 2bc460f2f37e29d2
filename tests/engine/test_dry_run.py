"""`run --yes --dry-run` and `plan` write nothing: etcd and PostgreSQL stay byte-identical.

Both commands walk every step with realistic plans (the dry-run overlay lets later steps see
what earlier ones would write), yet afterwards every key and value under `/sorna/` is the same
(read raw with etcdctl), etcd's revision has not moved (not even a put of an unchanged value
happened), `pg_dump --data-only` of the database is the same byte for byte, the agents hold the
same images, the manager was never stopped, no cluster lock was taken and no state file was
written.
"""

from __future__ import annotations

import pytest

from backends.sandbox.cluster import Sandbox

from .support import Cli, agents, end_sessions, etcd_sorna, lock_entry, manager_up, pg_dump

pytestmark = [pytest.mark.docker]

STEPS = ("preflight", "maintenance", "registry", "prepull", "aliases", "allowlists", "verify", "cleanup",
         "agent-cleanup")


def _snapshot(cli: Cli) -> tuple[object, ...]:
    info = cli.info
    revision, kvs = etcd_sorna(info)
    images = {a: v.images for a, v in agents(info).items()}
    containers = {a: v.containers for a, v in agents(info).items()}
    return revision, kvs, pg_dump(info), images, containers


def test_dry_run_and_plan_leave_etcd_and_postgres_byte_identical(cli: Cli) -> None:
    info = cli.info
    assert end_sessions(info) == 2          # so that both walk every step, cleanup included
    manager_pid = Sandbox(info.path).proc("manager").pid()
    before = _snapshot(cli)
    revision, kvs, dump, _images, _containers = before
    assert len(kvs) > 200 and b"INSERT" not in dump and b"COPY public.domains" in dump

    outputs = {}
    for argv in (("run", "--yes", "--dry-run"), ("plan",)):
        r = cli.run(*argv)
        out = r.stdout + r.stderr
        assert r.returncode == 0, out[-3000:]
        assert "run dry-run (exit 0): nothing was written" in out
        outputs[argv[0]] = out
        after = _snapshot(cli)
        assert after[0] == revision, f"{' '.join(argv)}: etcd's revision moved: {revision} -> {after[0]}"
        assert after[1] == kvs, f"{' '.join(argv)}: keys under /sorna/ changed"
        assert after[2] == dump, f"{' '.join(argv)}: the database changed"
        assert after[3:] == before[3:], f"{' '.join(argv)}: an agent changed"

    for out in outputs.values():
        # Every step planned its concrete changes, and the plans were printed.
        for step in STEPS:
            assert f"[{step}] plan: " in out, step
        assert "[registry]   put     etcd config/docker/registry/cr.backend.ai/type: (absent) -> harbor2" in out
        assert "[allowlists]   update  sql domains[default].allowed_docker_registries: " \
               "{index.docker.io} -> {cr.backend.ai}" in out
        assert "[cleanup] plan: delete 224 keys of index.docker.io" in out
        assert "[agent-cleanup] plan: remove 20 old image tag(s) from 3 agents; 4 kept" in out
    assert Sandbox(info.path).proc("manager").pid() == manager_pid and manager_up(info)
    assert lock_entry(info) is None
    assert not cli.state_dir.exists()
