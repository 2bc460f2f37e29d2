"""Our side of the `rescan` benchmark as a whole process: `etcd rescan-images REGISTRY`, our way.

    python -m bench.rescan_ours --config manager.toml REGISTRY

does what the 20.09 CLI's `rescan-images` does, with the engine's code and nothing else: read
`manager.toml` (backends.config), read the registry entry from etcd, `scan_registry` it and
write the keys with `EtcdStore.write_concurrently` (what the `registry` step applies). The
tool has no rescan-only subcommand (its `registry` step also stops the manager and writes the
configuration), so the benchmark runs this module; prints one JSON line with the counts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence

import backends  # noqa: F401  (pure-python protobuf runtime before etcd3)
from backends.config import load_settings
from backends.errors import MigrateError
from backends.etcd import EtcdStore, nest_pairs
from backends.registry_document import entry_from_etcd, registry_key
from backends.scanner import scan_registry


async def rescan(config: str, registry: str, concurrency: int | None) -> dict[str, object]:
    settings = load_settings(config)
    async with EtcdStore.from_settings(settings.etcd) as store:
        key = registry_key(registry)
        tree = nest_pairs(key, (await store.get_tree(key)).items())
        entry = entry_from_etcd(registry, tree)
        if entry is None:
            raise MigrateError(f"no registry {registry!r} under config/docker/registry",
                               fix="put-json the registry configuration first")
        kw = {"concurrency": concurrency} if concurrency else {}
        result = await scan_registry(entry, **kw)
        batches = await store.write_concurrently(result.keys)
    return {"images": len(result.images), "keys": len(result.keys), "transactions": batches,
            "requests": result.requests}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.rescan_ours", description=__doc__.split("\n")[0])
    ap.add_argument("--config", required=True, help="manager.toml (etcd address, namespace, credentials)")
    ap.add_argument("--concurrency", type=int, default=None, help="override scan_registry's default")
    ap.add_argument("registry", help="the registry name under config/docker/registry")
    args = ap.parse_args(argv)
    try:
        out = asyncio.run(rescan(args.config, args.registry, args.concurrency))
    except MigrateError as e:
        print(f"rescan_ours: {e.one_line()}", file=sys.stderr)
        return 1
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
