"""TLS verification is on unless the registry entry says `"ssl-verify": false`.

A TLS endpoint on 127.0.0.1 with a self-signed certificate (made here with `openssl req -x509`)
serves the Harbor stand-in through the fault proxy (no faults programmed: a plain TLS
terminator). With the registry JSON pointing at it:

- default (`ssl-verify` absent, i.e. true): preflight stops the run at its gate with a line
  saying TLS certificate verification failed for that URL and how to fix it (install the CA,
  or set "ssl-verify": false), and the registry step's rescan refuses likewise, before writing;
- `"ssl-verify": false`: preflight passes (warning that verification is off) and the rescan
  finds every kernel image, as over plain HTTP.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from engine.support import Cli, etcd_ns, target_kernel_images
from faults.fault_proxy import FaultProxy
from faults.states import open_engine

from backends.errors import MigrateError
from backends.registry_api import RegistryUnavailable
from backends.registry_document import validate
from backends.sandbox.layout import SandboxInfo
from backends.scanner import scan_registry

pytestmark = [pytest.mark.docker]


@pytest.fixture(scope="module")
def tls_proxy(sandbox: SandboxInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultProxy]:
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(d / "key.pem"),
                    "-out", str(d / "cert.pem")], check=True, capture_output=True, timeout=60)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(d / "cert.pem", d / "key.pem")
    with FaultProxy(sandbox.harbor_url, ssl=ctx) as p:
        assert p.url.startswith("https://127.0.0.1:")
        yield p


def document(info: SandboxInfo, url: str, ssl_verify: bool | None) -> str:
    e = {"": url, "type": "harbor2", "project": "stable,community", "username": info.creds.harbor_user,
         "password": info.creds.harbor_password}
    if ssl_verify is not None:
        e["ssl-verify"] = ssl_verify
    return json.dumps({"config": {"docker": {"registry": {"cr.backend.ai": e}}}}, indent=2)


def plan_for(c: Cli, url: str, ssl_verify: bool | None, name: str) -> Cli:
    text = c.info.plan_toml.read_text()
    a = text.index("json = '''") + len("json = '''")
    b = text.index("'''", a)
    path = c.home / name
    path.write_text(text[:a] + "\n" + document(c.info, url, ssl_verify) + "\n" + text[b:])
    return c.with_plan(path)


def test_self_signed_registry_is_refused_unless_ssl_verify_is_false(fresh_sandbox: SandboxInfo, tmp_path: Path,
                                                                    tls_proxy: FaultProxy) -> None:
    # The seeded cluster: preflight also refuses a plan whose aliases.remove names an alias an
    # earlier test's migration already removed.
    info = fresh_sandbox
    url = tls_proxy.url
    c = Cli.create(info, tmp_path)
    before = etcd_ns(info)

    # verification on (the default): preflight's gate, with the cause and the fix
    strict = plan_for(c, url, None, "plan-tls.toml")
    r = strict.run("run", "--yes", "--steps", "preflight")
    assert r.returncode == 3, r.stdout[-3000:]
    assert f"run gate (exit 3): step preflight is blocked: cr.backend.ai at {url}: GET {url}/api/v2.0/ping: TLS " \
           "certificate verification failed; fix: install the registry's CA certificate, or set \"ssl-verify\": " \
           "false in its entry" in r.stdout, r.stdout[-2000:]

    # ... and the registry step's rescan, were preflight skipped
    async def registry_plan(cli: Cli) -> None:
        eng = await open_engine(cli)
        try:
            await eng.plan("registry")
        finally:
            await eng.close()

    with pytest.raises(MigrateError) as e:
        asyncio.run(registry_plan(strict))
    assert f"the rescan of cr.backend.ai at {url} failed, nothing was written" in str(e.value)
    assert "TLS certificate verification failed" in str(e.value) and "ssl-verify" in str(e.value)
    entry = validate(document(info, url, None), target="cr.backend.ai").entries["cr.backend.ai"]
    with pytest.raises(RegistryUnavailable, match="TLS certificate verification failed"):
        asyncio.run(scan_registry(entry))
    assert etcd_ns(info) == before

    # "ssl-verify": false: accepted, with a warning, and the rescan sees every image
    lax = plan_for(c, url, False, "plan-tls-lax.toml")
    r = lax.run("run", "--yes", "--steps", "preflight")
    assert r.returncode == 0, r.stdout[-3000:]
    assert f"cr.backend.ai answers at {url}" in r.stdout
    entry = validate(document(info, url, False), target="cr.backend.ai").entries["cr.backend.ai"]
    assert entry.ssl_verify is False
    result = asyncio.run(scan_registry(entry))
    assert set(result.images) == target_kernel_images()
    assert etcd_ns(info) == before
