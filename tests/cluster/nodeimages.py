"""Images on the real node: no registry is reachable here, so every image a pod runs is
built locally with the container engine (podman) and imported into the node's
containerd (``podman save`` -> ``ctr images import``), under the exact name the pod
spec uses.

An import is cached in containerd's own store (the harness keeps it in the tool
cache between runs): each imported image carries a label with the engine's image ID,
and an image whose ID is unchanged is not imported again. A new build replaces the
old one there: what only the old one used is removed (:meth:`NodeImages.prune`).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from procs import HarnessError, Tools, run

#: The label on an imported image that records which local build it came from.
SOURCE_LABEL = "mindzoo.test/source-id"
NAMESPACE = "k8s.io"  # the CRI plugin's containerd namespace


def podman_env() -> dict[str, str]:
    """podman with the project's engine settings (runc: crun refuses this host's hybrid cgroups)."""
    from mindzoo.stack.engine import podman_env as project_env

    return {**os.environ, **project_env()}


def engine_image_id(tools: Tools, image: str) -> str:
    proc = run([tools.podman, "image", "inspect", "--format", "{{.Id}}", image], f"finding image {image}",
               check=False)
    if proc.returncode != 0:
        raise HarnessError(f"image {image} is not in the local container engine: build it first "
                           f"(`make images` builds the CPU image)")
    return proc.stdout.decode().strip()


def build_scratch(tools: Tools, name: str, files: dict[str, bytes], containerfile: str) -> None:
    """Build ``name`` FROM scratch with the engine: ``files`` (executable) and ``containerfile`` as its context."""
    with tempfile.TemporaryDirectory(prefix="mindzoo-image-") as context:
        for file, data in files.items():
            (Path(context) / file).write_bytes(data)
            (Path(context) / file).chmod(0o755)
        (Path(context) / "Containerfile").write_text(containerfile)
        proc = subprocess.run([str(tools.podman), "build", "-q", "-t", name, context], capture_output=True,
                              text=True, timeout=300, env=podman_env())
        if proc.returncode != 0:
            raise HarnessError(f"building the image {name} failed: {proc.stderr.strip()[-500:]}")


def build_pause(tools: Tools, name: str) -> None:
    """The pod sandbox image: Kubernetes' pause program (built from its C source by
    scripts/build-tools.sh), alone in an image, run as nobody."""
    build_scratch(tools, name, {"pause": tools.pause.read_bytes()},
                  'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n')


class NodeImages:
    """Imports local images into the node's containerd (``ctr`` against its socket)."""

    def __init__(self, tools: Tools, socket: Path):
        self.tools, self.socket = tools, socket

    def _ctr(self, *args: str, what: str, **kwargs) -> subprocess.CompletedProcess:
        return run([self.tools.ctr, "--address", str(self.socket), "--namespace", NAMESPACE, *args], what, **kwargs)

    def imported_id(self, name: str) -> str | None:
        """The local build an imported image came from (None when it is not imported)."""
        listing = self._ctr("images", "ls", f"name=={name}", what=f"listing {name} in containerd").stdout.decode()
        for line in listing.splitlines()[1:]:
            for label in line.split()[-1].split(","):
                key, _, value = label.partition("=")
                if key == SOURCE_LABEL:
                    return value
        return None

    def ensure(self, image: str, *, as_name: str | None = None) -> str:
        """Make the engine's ``image`` available to pods as ``as_name`` (default: the same name);
        import it only when containerd lacks that build. Returns the name."""
        name = as_name or image
        source_id = engine_image_id(self.tools, image)
        if self.imported_id(name) == source_id:
            return name
        if name != image:
            run([self.tools.podman, "tag", image, name], f"tagging {image} as {name}")
        save = subprocess.Popen([str(self.tools.podman), "save", "--format", "docker-archive", name],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=podman_env())
        try:
            imported = subprocess.run([str(self.tools.ctr), "--address", str(self.socket), "--namespace", NAMESPACE,
                                       "images", "import", "--digests", "-"], stdin=save.stdout,
                                      capture_output=True, timeout=1800)
        finally:
            save.stdout.close()
            save.wait(60)
        if save.returncode != 0 or imported.returncode != 0:
            err = (save.stderr.read() if save.returncode else imported.stderr).decode(errors="replace").strip()
            raise HarnessError(f"importing {name} into the node's containerd failed (podman save exited "
                               f"{save.returncode}, ctr import {imported.returncode}): "
                               f"{(err.splitlines() or ['no message'])[-1]}; {_free_space()}")
        self._ctr("images", "label", name, f"{SOURCE_LABEL}={source_id}", what=f"labelling {name}")
        self.prune()
        return name

    def remove(self, name: str) -> None:
        """Remove ``name`` from the node, with whatever only it used."""
        self._ctr("images", "rm", name, what=f"removing {name} from containerd", check=False)
        self.prune()

    def refs(self) -> dict[str, str]:
        """Every image reference in the node's containerd, and the digest it points to."""
        listing = self._ctr("images", "ls", what="listing containerd's images").stdout.decode()
        return {ref: digest for ref, _type, digest, *_ in (line.split() for line in listing.splitlines()[1:])}

    def has_content(self, digest: str) -> bool:
        """Whether containerd's content store still holds the blob ``digest``."""
        listing = self._ctr("content", "ls", "-q", what="listing containerd's content").stdout.decode()
        return digest in listing.split()

    def prune(self) -> list[str]:
        """Remove the references only superseded builds still have, and with them (``--sync``: containerd's
        garbage collection, before returning) their layers; returns the references removed.

        Besides a name, an import leaves an ``import-<date>@sha256:...`` reference and the CRI plugin adds
        ``sha256:<image id>``; a rebuilt image moves its name but not those, so without this the store kept
        every build the tests ever imported (33 GB of them was seen)."""
        refs = self.refs()
        named = {digest for ref, digest in refs.items() if not _generated(ref)}
        stale = sorted(ref for ref, digest in refs.items() if digest not in named)
        if stale:
            self._ctr("images", "rm", "--sync", *stale, what="removing superseded images from containerd")
        return stale


def _generated(ref: str) -> bool:
    """A reference containerd made for an image (its import or its ID), not a name a pod asks for."""
    return ref.startswith(("import-", "sha256:"))


def _free_space() -> str:
    """Where an import needs room: podman stages the whole image in its temporary folder first (seen: a disk
    filled by a 6 GB staging file ended the import with no message at all)."""
    import shutil

    staging = os.environ.get("TMPDIR", "/var/tmp")
    try:
        free = shutil.disk_usage(staging).free
    except OSError:
        return f"{staging} cannot be read"
    return f"{free / 2**30:.1f} GiB free in {staging}, where podman save stages the image"
