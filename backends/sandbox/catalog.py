"""What the sandbox's registries hold: the images of a small but realistic 20.09 cluster.

One list drives everything: the Docker Hub stand-in (`lablup/<name>`), the Harbor stand-in's
upstream (`stable/<name>`, `community/<name>`), the etcd image metadata a 20.09 rescan of Docker
Hub would have left, the aliases, the kernels in PostgreSQL and the images on the agents.
Every case the migration must handle has at least one image here:

- single-arch and multi-arch (manifest list: amd64 + arm64) tags;
- images without the `ai.backend.kernelspec` label (the scanner skips them) and with an
  unsupported kernelspec;
- a `community`-only image, an image that only Docker Hub has (its alias cannot be remapped);
- a repository whose name 20.09's scanner filters out (`base-`);
- infrastructure images (`backendai-socket-relay`, `backendai-krunner-extractor`,
  `lablup/importer`) that agent cleanup must never touch;
- one runnable image (busybox inside) so an agent can have a live container on an old image.
"""

from __future__ import annotations

from dataclasses import dataclass, field

KERNEL_LABELS_COMMON = {
    "ai.backend.kernelspec": "1",
    "ai.backend.features": "batch query uid-match user-input",
    "ai.backend.resource.min.cpu": "1",
}


def _py(distro: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    labels = {
        **KERNEL_LABELS_COMMON,
        "ai.backend.base-distro": distro,
        "ai.backend.runtime-type": "python",
        "ai.backend.runtime-path": "/usr/bin/python3",
        "ai.backend.service-ports": "ipython:pty:3000,jupyter:http:8080,jupyterlab:http:8090",
        "ai.backend.resource.min.mem": "256m",
    }
    labels.update(extra or {})
    return labels


def _cuda(distro: str, mem: str = "1g") -> dict[str, str]:
    return _py(distro, {
        "ai.backend.accelerators": "cuda",
        "ai.backend.resource.min.mem": mem,
        "ai.backend.resource.min.cuda.device": "1",
        "ai.backend.resource.min.cuda.shares": "0.1",
    })


@dataclass(frozen=True)
class ImageSpec:
    """One tag of one repository, as pushed to the stand-in registries."""

    name: str                       # repository name without namespace/project, e.g. "python"
    tag: str
    labels: dict[str, str] = field(default_factory=dict)
    multiarch: bool = False         # tag is a manifest list (linux/amd64 + linux/arm64)
    runnable: bool = False          # layer holds a static busybox; CMD sleeps
    layer_kib: int = 96             # synthetic payload per layer (deterministic bytes)
    layers: int = 2
    hub_namespace: str | None = "lablup"   # Docker Hub stand-in namespace; None: not on Docker Hub
    harbor_projects: tuple[str, ...] = ("stable",)  # Harbor copies; () = not on Harbor
    infra: bool = False             # agent infrastructure: never pulled, never removed by us
    on_agents: bool = False         # pulled onto every agent by `sandbox up` (an "old image")

    @property
    def is_kernel(self) -> bool:
        v = self.labels.get("ai.backend.kernelspec")
        return v is not None and v.isdigit() and int(v) == 1

    @property
    def hub_repo(self) -> str | None:
        return f"{self.hub_namespace}/{self.name}" if self.hub_namespace else None

    @property
    def hub_ref(self) -> str | None:
        """The name an agent shows for it (Docker normalises `index.docker.io/` away)."""
        return f"{self.hub_repo}:{self.tag}" if self.hub_repo else None

    @property
    def hub_canonical(self) -> str | None:
        """The canonical reference Backend.AI 20.09 stores in kernels.image and aliases."""
        return f"index.docker.io/{self.hub_repo}:{self.tag}" if self.hub_repo else None


CATALOG: tuple[ImageSpec, ...] = (
    # --- kernel images on Docker Hub with copies in stable/ -----------------------------
    ImageSpec("python", "3.6-ubuntu18.04", _py("ubuntu18.04"), runnable=True, on_agents=True),
    ImageSpec("python", "3.8-ubuntu20.04", _py("ubuntu20.04"), on_agents=True),
    ImageSpec("python", "3.9-ubuntu20.04", _py("ubuntu20.04"), multiarch=True, on_agents=True),
    ImageSpec("python-tensorflow", "2.3-py38-cuda11.0", _cuda("ubuntu18.04"), layer_kib=256, on_agents=True),
    ImageSpec("python-tensorflow", "2.7-py38-cuda11.3", _cuda("ubuntu20.04"), layer_kib=256, multiarch=True),
    ImageSpec("python-pytorch", "1.8-py38-cuda11.1", _cuda("ubuntu18.04", "2g"), layer_kib=256, on_agents=True),
    ImageSpec("python-pytorch", "1.11-py38-cuda11.3", _cuda("ubuntu20.04", "2g"), layer_kib=256),
    ImageSpec("ngc-pytorch", "20.11-py3", _cuda("ubuntu18.04", "4g"), layer_kib=384, multiarch=True),
    ImageSpec("ngc-tensorflow", "20.11-tf2-py3", _cuda("ubuntu18.04", "4g"), layer_kib=384),
    ImageSpec("r-base", "4.0", {**KERNEL_LABELS_COMMON, "ai.backend.base-distro": "ubuntu18.04",
                                "ai.backend.runtime-type": "r", "ai.backend.runtime-path": "/usr/bin/R",
                                "ai.backend.service-ports": "rstudio:http:8787",
                                "ai.backend.resource.min.mem": "512m"}, on_agents=True),
    ImageSpec("julia", "1.5-ubuntu20.04", {**KERNEL_LABELS_COMMON, "ai.backend.base-distro": "ubuntu20.04",
                                           "ai.backend.runtime-type": "julia",
                                           "ai.backend.runtime-path": "/usr/local/julia/bin/julia",
                                           "ai.backend.resource.min.mem": "512m"},
              harbor_projects=("community",)),
    ImageSpec("sftp-upload", "ubuntu20.04", {**KERNEL_LABELS_COMMON, "ai.backend.base-distro": "ubuntu20.04",
                                             "ai.backend.runtime-type": "app",
                                             "ai.backend.role": "SYSTEM",
                                             "ai.backend.resource.min.mem": "128m"}),
    ImageSpec("python-ff", "19.06-py36", _py("ubuntu18.04"), harbor_projects=("stable", "community")),
    ImageSpec("octave", "5.2-ubuntu18.04", {**KERNEL_LABELS_COMMON, "ai.backend.base-distro": "ubuntu18.04",
                                            "ai.backend.runtime-type": "octave",
                                            "ai.backend.runtime-path": "/usr/bin/octave",
                                            "ai.backend.resource.min.mem": "256m"},
              harbor_projects=("community",)),
    # --- only on Docker Hub: an alias to it has nothing to move to -----------------------
    ImageSpec("lua", "5.3-alpine3.8", {**KERNEL_LABELS_COMMON, "ai.backend.base-distro": "alpine3.8",
                                       "ai.backend.runtime-type": "lua",
                                       "ai.backend.resource.min.mem": "64m"},
              harbor_projects=(), on_agents=True),
    # --- not kernel images -------------------------------------------------------------
    ImageSpec("utility", "1.0", {"maintainer": "Lablup Inc."}, harbor_projects=("stable",)),
    ImageSpec("python", "3.11-next", {**_py("ubuntu22.04"), "ai.backend.kernelspec": "2"},
              hub_namespace=None, harbor_projects=("community",)),
    ImageSpec("base-python", "3.9", _py("ubuntu20.04"), hub_namespace=None, harbor_projects=("stable",)),
    # --- agent infrastructure: never touched -------------------------------------------
    ImageSpec("importer", "manylinux2010", {"maintainer": "Lablup Inc."}, harbor_projects=(),
              infra=True, on_agents=True),
    ImageSpec("backendai-socket-relay", "latest", {}, hub_namespace="library", harbor_projects=(),
              infra=True, on_agents=True),
    ImageSpec("backendai-krunner-extractor", "latest", {}, hub_namespace="library", harbor_projects=(),
              infra=True, on_agents=True),
)

# Aliases as a 20.09 cluster set up from the sample image-aliases.yml (docs/backendai-etcd.md#aliases):
# short targets resolve to Docker Hub, some are already canonical, one chains to another alias.
ALIASES: dict[str, str] = {
    "python": "python:3.6-ubuntu18.04",
    "python3": "index.docker.io/lablup/python:3.8-ubuntu20.04",
    "python-latest": "python:3.9-ubuntu20.04",
    "py": "python",                                     # a chain: py -> python -> python:3.6
    "tensorflow": "python-tensorflow:2.3-py38-cuda11.0",
    "tensorflow-gpu": "index.docker.io/lablup/python-tensorflow:2.7-py38-cuda11.3",
    "pytorch": "index.docker.io/lablup/python-pytorch:1.8-py38-cuda11.1",
    "ngc": "ngc-pytorch:20.11-py3",
    "r": "index.docker.io/lablup/r-base:4.0",
    "julia": "julia:1.5-ubuntu20.04",
    "lua": "lua:5.3-alpine3.8",                        # only on Docker Hub: cannot be remapped
    "python:3.6": "index.docker.io/lablup/python:3.6-ubuntu18.04",  # colon: quoting changes it
}


def kernel_images_on_hub() -> list[ImageSpec]:
    return [s for s in CATALOG if s.hub_namespace == "lablup" and s.is_kernel]


def by_hub_ref(ref: str) -> ImageSpec | None:
    for s in CATALOG:
        if s.hub_ref == ref:
            return s
    return None
