"""`inspect`: a newcomer's read-only first look at a cluster.

Manager version and storage era, registries, image counts per registry, aliases, domains with
their allowlists, agents, and live kernels on Docker Hub images. Reads only; never needs the
cluster lock.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import Counter
from typing import Any
from urllib.parse import unquote

from .cluster import Cluster
from .config import load_settings
from .errors import EXIT_OK, ConnectError
from .image_ref import DOCKER_HUB
from .images import metadata_images
from .manager_control import Version, gate_version
from .plan_file import load_plan
from .secrets import MASK, is_secret_key
from .textsafe import json_line_safe, terminal_safe


async def gather(cluster: Cluster) -> dict[str, Any]:
    s = cluster.settings
    out: dict[str, Any] = {
        "config": str(s.config_path), "namespace": s.etcd.namespace, "etcd": str(s.etcd.addr),
        "db": f"{s.db.addr}/{s.db.name}", "overrides": list(s.overridden),
    }
    try:
        info = await cluster.manager.hello()
        out["manager"] = {"url": cluster.manager.url, "version": info.version, "api": info.api_version}
        try:
            gate = gate_version(Version.parse(info.version))
            out["manager"]["supported"] = gate.ok
            out["manager"]["gate"] = gate.message
        except ValueError as e:
            out["manager"]["gate"] = str(e)
    except ConnectError as e:
        out["manager"] = {"url": cluster.manager.url, "error": e.one_line()}
    era = await cluster.db.schema_era()
    out["era"] = era.label
    out["etcd_version"] = await cluster.etcd.server_version()
    regs = await cluster.kv_tree("config/docker/registry")
    out["registries"] = {name: ({k: (MASK if is_secret_key(k) else v) for k, v in tree.items()}
                                if isinstance(tree, dict) else {"": tree}) for name, tree in regs.items()}
    images = metadata_images(await cluster.kv_flat("images/"))
    per_reg = Counter(img.registry for img in images.values())
    out["images"] = dict(sorted(per_reg.items()))
    raw = await cluster.aliases_raw()
    out["aliases"] = {unquote(k): v for k, v in sorted(raw.items())}
    out["domains"] = [{"name": d.name, "active": d.is_active, "allowed_docker_registries": d.allowed_docker_registries}
                      for d in await cluster.db.domains()]
    out["agents"] = [{"id": a.id, "status": a.status, "addr": a.addr, "version": a.version,
                      "architecture": a.architecture} for a in await cluster.db.all_agents()]
    out["live_kernels_on_docker_hub"] = [
        {"session": k.session_name, "status": k.status, "image": k.image, "agent": k.agent, "domain": k.domain_name,
         "access_key": k.access_key} for k in await cluster.db.live_kernels(DOCKER_HUB)]
    return out


def render(d: dict[str, Any]) -> str:
    lines = [f"cluster  namespace {d['namespace']!r}  etcd {d['etcd']} ({d.get('etcd_version', '?')})  db {d['db']}",
             f"config   {d['config']}" + (f"  (overrides: {', '.join(d['overrides'])})" if d["overrides"] else "")]
    m = d.get("manager", {})
    if "error" in m:
        lines.append(f"manager  {m.get('url')}: {m['error']}")
    else:
        ok = "supported" if m.get("supported") else "NOT supported"
        lines.append(f"manager  {m.get('version')} (API {m.get('api')}) at {m.get('url')}: {ok}")
    lines.append(f"era      {d['era']}")
    lines.append("registries")
    for name, tree in d["registries"].items():
        extra = ", ".join(f"{k}={v}" for k, v in tree.items() if k)
        lines.append(f"  {name:<24} {tree.get('', '?')}  {extra}  images: {d['images'].get(name, 0)}")
    orphan = {r: n for r, n in d["images"].items() if r not in d["registries"]}
    for r, n in orphan.items():
        lines.append(f"  {r:<24} (not configured)  images: {n}")
    lines.append(f"aliases ({len(d['aliases'])})")
    for a, t in d["aliases"].items():
        lines.append(f"  {a:<24} -> {t}")
    lines.append(f"domains ({len(d['domains'])})")
    for dom in d["domains"]:
        flag = "" if dom["active"] else " (inactive)"
        lines.append(f"  {dom['name']:<24} {{{','.join(dom['allowed_docker_registries'])}}}{flag}")
    lines.append(f"agents ({len(d['agents'])})")
    for a in d["agents"]:
        lines.append(f"  {a['id']:<24} {a['status']:<10} {a['addr']}  {a['version']}  {a['architecture']}")
    live = d["live_kernels_on_docker_hub"]
    lines.append(f"live kernels on {DOCKER_HUB} images ({len(live)})")
    for k in live:
        lines.append(f"  {k['session'] or '-':<24} {k['status']:<10} {k['image']}  on {k['agent']}  ({k['domain']})")
    return "\n".join(lines)


async def _run(args: argparse.Namespace) -> int:
    settings = load_settings(getattr(args, "config", None))
    plan = load_plan(getattr(args, "plan", None))
    async with Cluster(settings, plan) as cluster:
        d = await gather(cluster)
    # Names and values come from the cluster: their control characters are shown, not obeyed.
    print(json_line_safe(json.dumps(d, indent=2, default=str)) if args.json
          else terminal_safe(render(d), keep_newlines=True))
    return EXIT_OK


def run_inspect(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args))
