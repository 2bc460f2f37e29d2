"""How every alias resolves now and where it should point: read by the aliases, allowlists
and pre-pull steps alike, so all three agree on which aliases still lead to Docker Hub.

etcd era rules (Backend.AI 20.09, `ai/backend/common/docker.py` `ImageRef` and
`ai/backend/manager/models/image.py` in backend.ai-manager 20.9.29): `images/_aliases/<quote(alias)>` holds the
target string as given; the manager looks aliases up *unquoted*, following chains up to 8
hops, and parses a target without a known registry as Docker Hub with `lablup/` prepended.
A proposal is made only when the target image exists in the rescanned metadata, trying the
target's projects in order (`stable`, then `community`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..etcd import quote
from ..image_ref import DOCKER_HUB, parse_backendai_ref
from ..images import AliasLoop, metadata_images, resolve_alias
from .views import AliasView

if TYPE_CHECKING:
    from .base import Step


@dataclass
class AliasRow:
    alias: str                 # the name as operators write it (unquoted)
    stored_key: str            # the quoted key segment in etcd
    current: str               # current target string
    resolved: str | None       # canonical reference the current target resolves to
    proposed: str | None       # new target, or None
    status: str                # remap | migrated | chain | other-registry | unresolvable | remove | skip | override
    note: str = ""
    risky: bool = False        # quoting changes the name: 20.09 never finds it by that name
    risk: str = ""             # why it is risky, kept apart from `note` (which says what happens)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def view(d: dict[str, Any]) -> AliasView:
        """A saved row (plan data) as the wizard shows it."""
        return AliasView(d["alias"], d["current"], d.get("resolved"), d.get("proposed"), d["status"],
                         d.get("note", ""), bool(d.get("risky")), d.get("risk", ""))


async def target_images(step: Step) -> dict[str, Any]:
    target = step.cluster.plan.target
    flat = await step.cluster.kv_flat(f"images/{quote(target)}/")
    return metadata_images(flat)


async def analyse(step: Step) -> list[AliasRow]:
    """Every alias with what it resolves to now and what it should point at."""
    cluster = step.cluster
    plan = cluster.plan
    target = plan.target
    projects = cluster.target_validation().entries.get(target).projects \
        if target in cluster.target_validation().entries else ["stable", "community"]
    known = list((await cluster.registries()).keys()) + [target]
    raw = await cluster.aliases_raw()
    from urllib.parse import unquote
    available = await target_images(step)
    rows: list[AliasRow] = []
    for seg, value in sorted(raw.items()):
        alias = unquote(seg)
        risky = quote(alias) != alias
        row = AliasRow(alias, seg, value, None, None, "unresolvable", risky=risky)
        if risky:
            row.risk = (f"20.09 looks aliases up unquoted, and this name is stored as {seg!r}: typing "
                        f"{alias!r} never finds it (it falls back to Docker Hub's {alias})")
        if alias in plan.aliases.skip:
            row.status, row.note = "skip", "left as it is (plan: aliases.skip)"
            rows.append(row)
            continue
        if value in raw:  # a chain: fixing the end fixes this one too
            try:
                final, chain = resolve_alias(value, raw)
                row.resolved = final
            except AliasLoop as e:
                row.note = str(e)
                rows.append(row)
                continue
            row.status = "chain"
            row.note = "points at another alias: " + " -> ".join([alias, *chain])
            rows.append(row)
            continue
        try:
            ref = parse_backendai_ref(value, known)
        except ValueError as e:
            row.note = f"target does not parse as 20.09 would: {e}"
            rows.append(row)
            continue
        row.resolved = ref.canonical
        if alias in plan.aliases.remove:
            row.status, row.proposed = "remove", None
            row.note = "removed (plan: aliases.remove)"
            rows.append(row)
            continue
        override = plan.aliases.overrides.get(alias)
        if override is not None:
            try:
                oref = parse_backendai_ref(override, known)
            except ValueError as e:
                raise ConfigError(f"override for alias {alias!r} does not parse: {e}",
                                  key=f"aliases.overrides.{alias}", fix="write a full reference, e.g. "
                                  f"{target}/stable/python:3.9-ubuntu20.04") from None
            row.status, row.proposed = "override", oref.canonical
            if oref.canonical not in available and oref.registry == target:
                row.status, row.proposed = "unresolvable", None
                row.note = f"override {override!r} is not in the rescanned metadata of {target}"
            rows.append(row)
            continue
        if ref.registry == target:
            row.status = "migrated"
            row.note = "already on the target" + ("" if ref.canonical in available else
                                                  " (but missing from its metadata)")
            rows.append(row)
            continue
        if ref.registry != DOCKER_HUB:
            row.status = "other-registry"
            row.note = f"on {ref.registry}: not part of this migration"
            rows.append(row)
            continue
        base = ref.name.split("/", 1)[1] if ref.name.startswith("lablup/") else ref.name.rsplit("/", 1)[-1]
        for project in projects:
            candidate = f"{target}/{project}/{base}:{ref.tag}"
            if candidate in available:
                row.status, row.proposed = "remap", candidate
                row.note = f"found in project {project}"
                break
        else:
            row.note = (f"{base}:{ref.tag} is in none of the projects {', '.join(projects)} of {target}; "
                        "choose a target, remove the alias, or keep index.docker.io allowed")
        rows.append(row)
    return rows


def hub_aliases(rows: list[AliasRow]) -> list[AliasRow]:
    """Aliases that will still resolve to Docker Hub after this step's plan."""
    out = []
    for r in rows:
        if r.status in ("remap", "override", "remove"):
            continue
        if r.resolved and r.resolved.startswith(DOCKER_HUB + "/"):
            out.append(r)
    return out
