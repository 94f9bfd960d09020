"""The node's local image store: unpacked root filesystems plus image configs, by tag.

Layout under `root` (default the network plan's IMAGES_DIR, apimachinery.netplan):

    <id>/rootfs        the unpacked filesystem (an overlay lowerdir, see nodeagent.runtime.rootfs)
    <id>/config.json   the image config (Cmd, Entrypoint, Env, WorkingDir, User, ...)
    tags.json          {"docker.io/library/busybox:latest": "<id>", ...}, rewritten atomically

`id` is the sha256 of the config plus a listing of the content.  Sources
produce a rootfs directory and a config and hand them to `import_rootfs`:
today a local rootfs and Debian's busybox-static; a registry puller (a later
issue) unpacks layers into a staging dir the same way and calls it too.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass

from apimachinery import netplan

DEFAULT_ROOT = netplan.IMAGES_DIR
DEFAULT_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BUSYBOX_BINARY = "/bin/busybox"


class ImageNotFound(LookupError):
    """No image by that reference in the local store."""


@dataclass(frozen=True, slots=True)
class Image:
    ref: str  # normalised, e.g. docker.io/library/busybox:latest
    id: str  # sha256 hex of config + content listing
    rootfs: str
    config: dict


def normalize_ref(ref: str) -> str:
    """Docker's normalisation: `busybox` -> `docker.io/library/busybox:latest`."""
    ref = ref.strip()
    if not ref:
        raise ValueError("empty image reference")
    name, _, digest = ref.partition("@")
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        domain, path = first, rest
    else:
        domain, path = "docker.io", name
    if domain == "index.docker.io":
        domain = "docker.io"
    if domain == "docker.io" and "/" not in path:
        path = "library/" + path
    last = path.rsplit("/", 1)[-1]
    if ":" not in last and not digest:
        path += ":latest"
    return f"{domain}/{path}" + (f"@{digest}" if digest else "")


def content_listing(rootfs: str) -> list[str]:
    """One line per entry (path, type, mode, uid, gid, size or link target, file digest), sorted."""
    lines: list[str] = []
    for dirpath, dirnames, filenames in os.walk(rootfs):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, rootfs)
            st = os.lstat(full)
            head = f"{rel}\t{st.st_mode:o}\t{st.st_uid}\t{st.st_gid}"
            if os.path.islink(full):
                lines.append(f"{head}\tl\t{os.readlink(full)}")
            elif os.path.isfile(full):
                h = hashlib.sha256()
                with open(full, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        h.update(chunk)
                lines.append(f"{head}\tf\t{st.st_size}\t{h.hexdigest()}")
            else:
                lines.append(f"{head}\td")
    return lines


def image_id(config: dict, listing: list[str]) -> str:
    h = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    h.update(b"\n".join(s.encode("utf-8", "surrogateescape") for s in listing))
    return h.hexdigest()


def busybox_version(banner: str) -> str | None:
    """`BusyBox v1.35.0 (Debian ...)` -> "1.35.0"."""
    m = re.search(r"BusyBox v(\d+(?:\.\d+)+)", banner)
    return m.group(1) if m else None


def version_tags(version: str) -> list[str]:
    """"1.35.0" -> ["1.35", "1.35.0"]: the tags Docker Hub gives a release."""
    parts = version.split(".")
    return [".".join(parts[:n]) for n in range(2, len(parts) + 1)]


class ImageStore:
    """Images on local disk.  Imports are idempotent; safe from several threads."""

    def __init__(self, root: str = DEFAULT_ROOT) -> None:
        self.root = root
        self._lock = threading.Lock()

    # -- tags -------------------------------------------------------------------
    def _tags_path(self) -> str:
        return os.path.join(self.root, "tags.json")

    def _read_tags(self) -> dict[str, str]:
        try:
            with open(self._tags_path()) as f:
                return json.load(f)
        except FileNotFoundError:
            return {}

    def _tag(self, refs: list[str], id: str) -> None:
        with self._lock:
            tags = self._read_tags()
            changed = {normalize_ref(r): id for r in refs}
            if all(tags.get(r) == i for r, i in changed.items()):
                return
            tags.update(changed)
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tags-")
            with os.fdopen(fd, "w") as f:
                json.dump(tags, f, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self._tags_path())

    def _image(self, ref: str, id: str) -> Image:
        d = os.path.join(self.root, id)
        with open(os.path.join(d, "config.json")) as f:
            return Image(ref=ref, id=id, rootfs=os.path.join(d, "rootfs"), config=json.load(f))

    # -- imports ----------------------------------------------------------------
    def import_rootfs(self, ref: str, rootfs_dir: str, config: dict, *, move: bool = False,
                      extra_refs: tuple[str, ...] = ()) -> Image:
        """Store a copy of `rootfs_dir` (moved instead when `move`) under `ref`.

        Idempotent: content already stored is only re-tagged.
        """
        os.makedirs(self.root, exist_ok=True)
        id = image_id(config, content_listing(rootfs_dir))
        dest = os.path.join(self.root, id)
        if not os.path.exists(os.path.join(dest, "config.json")):
            stage = tempfile.mkdtemp(dir=self.root, prefix=".stage-")
            try:
                if move:
                    os.rename(rootfs_dir, os.path.join(stage, "rootfs"))
                else:
                    shutil.copytree(rootfs_dir, os.path.join(stage, "rootfs"), symlinks=True)
                with open(os.path.join(stage, "config.json"), "w") as f:
                    json.dump(config, f, indent=1, sort_keys=True)
                shutil.rmtree(dest, ignore_errors=True)  # a half-made earlier import
                os.rename(stage, dest)
            finally:
                shutil.rmtree(stage, ignore_errors=True)
        self._tag([ref, *extra_refs], id)
        return self._image(normalize_ref(ref), id)

    def import_busybox(self, binary: str = BUSYBOX_BINARY) -> Image:
        """busybox:latest (and busybox:<version>) from Debian's busybox-static.

        Cheap when already imported: the version tag names the stored image.
        """
        banner = subprocess.run([binary], check=False, capture_output=True, text=True).stdout
        version = busybox_version(banner)
        refs = ["busybox:latest"] + [f"busybox:{v}" for v in version_tags(version or "")]
        tags = self._read_tags()
        if version and all(normalize_ref(r) in tags for r in refs):
            ids = {tags[normalize_ref(r)] for r in refs}
            if len(ids) == 1 and os.path.exists(os.path.join(self.root, ids.pop(), "config.json")):
                return self.resolve("busybox:latest")
        applets = subprocess.run([binary, "--list-full"], capture_output=True, text=True,
                                 check=True).stdout.split()
        os.makedirs(self.root, exist_ok=True)
        work = tempfile.mkdtemp(dir=self.root, prefix=".busybox-")
        try:
            rootfs = os.path.join(work, "rootfs")
            _build_busybox_rootfs(rootfs, binary, applets)
            config = {"Cmd": ["sh"], "Env": [DEFAULT_PATH_ENV], "WorkingDir": "/"}
            return self.import_rootfs(refs[0], rootfs, config, move=True, extra_refs=tuple(refs[1:]))
        finally:
            shutil.rmtree(work, ignore_errors=True)

    # -- lookups ----------------------------------------------------------------
    def resolve(self, ref: str) -> Image:
        """The image a reference (or an image id, `sha256:<id>` or a unique prefix) names."""
        tags = self._read_tags()
        try:
            norm = normalize_ref(ref)
        except ValueError:
            norm = ""
        if norm in tags:
            return self._image(norm, tags[norm])
        want = ref.removeprefix("sha256:")
        if re.fullmatch(r"[0-9a-f]{12,64}", want):
            ids = {i for i in tags.values() if i.startswith(want)}
            if len(ids) == 1:
                id = ids.pop()
                return self._image(next(r for r, i in sorted(tags.items()) if i == id), id)
        available = ", ".join(sorted(tags)) or "none"
        raise ImageNotFound(f"image {ref!r} ({norm or 'invalid reference'}) is not in the local store "
                            f"at {self.root}; available: {available}")

    def list(self) -> list[Image]:
        """One Image per tag, sorted by reference."""
        return [self._image(r, i) for r, i in sorted(self._read_tags().items())
                if os.path.exists(os.path.join(self.root, i, "config.json"))]


def _build_busybox_rootfs(rootfs: str, binary: str, applets: list[str]) -> None:
    """bin/busybox, a symlink per applet, and the directories a shell expects."""
    for d, mode in (("bin", 0o755), ("sbin", 0o755), ("usr/bin", 0o755), ("usr/sbin", 0o755),
                    ("etc", 0o755), ("tmp", 0o1777), ("proc", 0o555), ("sys", 0o555),
                    ("dev", 0o755), ("root", 0o700), ("var", 0o755), ("var/tmp", 0o1777),
                    ("home", 0o755)):
        os.makedirs(os.path.join(rootfs, d), exist_ok=True)
        os.chmod(os.path.join(rootfs, d), mode)
    shutil.copy2(binary, os.path.join(rootfs, "bin/busybox"))
    os.chmod(os.path.join(rootfs, "bin/busybox"), 0o755)
    for applet in applets:  # e.g. "usr/bin/wc"
        applet = applet.strip("/")
        link = os.path.join(rootfs, applet)
        if applet == "bin/busybox" or os.path.lexists(link):
            continue
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(os.path.relpath(os.path.join(rootfs, "bin/busybox"), os.path.dirname(link)), link)
    files = {
        "etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        "etc/group": "root:x:0:\nnogroup:x:65534:\nnobody:x:65534:\n",
    }
    for path, text in files.items():
        with open(os.path.join(rootfs, path), "w") as f:
            f.write(text)
        os.chmod(os.path.join(rootfs, path), 0o644)
