"""Helpers for the wizard's tests: the cluster's end state read back without the UI (etcd,
PostgreSQL, the agents' Docker daemons, the manager), and the masking that keeps snapshots
stable across sandboxes (see conftest.py for why)."""

from __future__ import annotations

import difflib
import html
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiodocker
import asyncpg
import httpx
from textual.errors import NoWidget
from textual.widget import Widget

from backends.config import HostPort
from backends.etcd import EtcdStore
from backends.sandbox.cluster import Sandbox
from backends.sandbox.layout import SandboxInfo
from backends.secrets import Secret
from tui.app import MigrationApp

SIZE = (120, 36)
WizardFactory = Callable[..., MigrationApp]


# -- the cluster's state, read without the wizard -----------------------------------------------

def etcd_store(info: SandboxInfo) -> EtcdStore:
    return EtcdStore(HostPort("127.0.0.1", info.ports.etcd), info.namespace, user=info.creds.etcd_user,
                     password=Secret(info.creds.etcd_password))


async def etcd_namespace(info: SandboxInfo) -> dict[str, str]:
    async with etcd_store(info) as store:
        return await store.get_flat("")


async def domains(info: SandboxInfo) -> dict[str, list[str]]:
    conn = await asyncpg.connect(info.pg_dsn())
    try:
        rows = await conn.fetch("SELECT name, allowed_docker_registries FROM domains ORDER BY name")
    finally:
        await conn.close()
    return {r["name"]: list(r["allowed_docker_registries"] or []) for r in rows}


async def agent_images(info: SandboxInfo) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for a in info.agents:
        docker = aiodocker.Docker(url=a.docker_url)
        try:
            out[a.id] = {t: img["Id"] for img in await docker.images.list() for t in (img.get("RepoTags") or [])
                         if t != "<none>:<none>"}
        finally:
            await docker.close()
    return out


async def manager_up(info: SandboxInfo) -> bool:
    try:
        async with httpx.AsyncClient(timeout=3.0) as c:
            return (await c.get(info.manager_url)).status_code == 200
    except httpx.HTTPError:
        return False


async def end_state(info: SandboxInfo) -> dict[str, Any]:
    return {"etcd": await etcd_namespace(info), "domains": await domains(info),
            "agents": await agent_images(info), "manager_up": await manager_up(info)}


def differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    out = []
    for k in sorted(set(a["etcd"]) | set(b["etcd"])):
        if a["etcd"].get(k) != b["etcd"].get(k):
            out.append(f"etcd {k}: {a['etcd'].get(k)!r} != {b['etcd'].get(k)!r}")
    if a["domains"] != b["domains"]:
        out.append(f"domains {a['domains']} != {b['domains']}")
    for agent in sorted(set(a["agents"]) | set(b["agents"])):
        mine, theirs = a["agents"].get(agent, {}), b["agents"].get(agent, {})
        if mine != theirs:
            out.append(f"agent {agent}: {sorted(set(mine.items()) ^ set(theirs.items()))}")
    if a["manager_up"] != b["manager_up"]:
        out.append(f"manager up {a['manager_up']} != {b['manager_up']}")
    return out


def end_sessions(info: SandboxInfo) -> int:
    return Sandbox(info.path).end_sessions()


# -- snapshots -------------------------------------------------------------------------------------

_MASKS: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    (re.compile(r"127\.0\.0\.1:(\d+)"), lambda m: "127.0.0.1:" + "0" * len(m.group(1))),
    (re.compile(r"/tmp/bairm-[0-9a-f]{8}"), lambda m: "/tmp/bairm-00000000"),
    (re.compile(r"\d{8}-\d{6}-[0-9a-f]{6}"), lambda m: "YYYYMMDD-hhmmss-xxxxxx"),
    # rich names the SVG's classes after a checksum of the unmasked screen (ports included)
    (re.compile(r"terminal-\d+"), lambda m: "terminal-snapshot"),
)


def stable_svg(svg: str) -> str:
    for pattern, repl in _MASKS:
        svg = pattern.sub(repl, svg)
    return svg




def screen_text(svg: str) -> list[str]:
    """The characters of a Textual SVG screenshot, row by row (for readable failure messages)."""
    rows: dict[float, list[tuple[float, str]]] = {}
    for m in _TEXT.finditer(svg):
        rows.setdefault(float(m["y"]), []).append((float(m["x"]), html.unescape(m["t"]).replace("\xa0", " ")))
    return ["".join(t for _, t in sorted(parts)) for _, parts in sorted(rows.items())]


def screen_diff(stored: Path, actual: str) -> str:
    """What changed on screen between a stored snapshot and a new screenshot, as a unified diff."""
    before = screen_text(stored.read_text()) if stored.exists() else []
    return "\n".join(difflib.unified_diff(before, screen_text(actual), str(stored.name), "now", lineterm="", n=0))


def screen_lines(app: MigrationApp) -> list[str]:
    """What the terminal shows of the active screen (a dialog included), one string per row."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


def fully_visible(widget: Widget) -> bool:
    """The whole widget is on the terminal: inside the screen and not clipped by any container
    (a scrolled-away or cut-off widget is somewhere in the layout, but nobody can read it)."""
    try:
        geometry = widget.screen.find_widget(widget)
    except NoWidget:
        return False
    region = geometry.region
    return region.area > 0 and geometry.clip.contains_region(region) and \
        widget.screen.region.contains_region(region)


_TEXT = re.compile(r'<text class="[^"]*" x="(?P<x>[\d.]+)" y="(?P<y>[\d.]+)"[^>]*>(?P<t>.*?)</text>', re.S)


# -- recordings: what the engine answered, without what varies from run to run ------------------

_VARYING = [(re.compile(r"127\.0\.0\.1:\d+"), "127.0.0.1:PORT"), (re.compile(r"/tmp/bairm-[\w.-]+"), "/tmp/SANDBOX"),
            (re.compile(r"\d{8}-\d{6}-[0-9a-f]{6}"), "RUN-ID"), (re.compile(r"\b\d+(\.\d+)? ?(ms|s)\b"), "T")]


def _steady(text: Any) -> str:
    out = str(text)
    for rx, repl in _VARYING:
        out = rx.sub(repl, out)
    return out


def recording_outline(path: Path) -> list[tuple[Any, ...]]:
    """Each recorded call as (step, method, what it answered): findings by severity and code,
    plans by summary and changes, verdicts by check; events and timings left out (a scan's
    progress counts and a pull's speed differ from run to run, what the engine decided does not)."""
    import json

    out: list[tuple[Any, ...]] = []
    for line in path.read_text(encoding="utf-8").splitlines()[1:]:
        rec = json.loads(line)
        method, value = rec["method"], rec.get("value")
        if rec.get("error"):
            answer: Any = ("error", _steady(rec["error"]["message"]))
        elif method == "inspect":
            answer = sorted((f["severity"], f["code"]) for f in value)
        elif method == "plan":
            answer = (_steady(value["summary"]), sorted((_steady(c["target"]), c["action"]) for c in value["changes"]))
        elif method == "verify":
            answer = sorted((_steady(c["name"]), c["ok"]) for c in value)
        else:
            answer = None
        out.append((rec["step"], method, answer))
    return out


# -- the replayed 80x24 tests ------------------------------------------------------------------

SMALL = (80, 24)   # the floor operators work at over SSH


async def open_at(pilot: Any, step: str) -> None:
    """Begin, walk to `step` and let its screen settle (replayed runs start there already)."""
    from tui.autopilot import begin, wait_idle, walk

    await begin(pilot)
    await walk(pilot, until=step)
    await wait_idle(pilot)
    await pilot.pause(0.2)
