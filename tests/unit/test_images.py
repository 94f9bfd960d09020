"""nodeagent.runtime.images: reference normalisation, the store's layout, busybox import.

Also the pure helpers of nodeagent.runtime.rootfs (mountinfo parsing, overlay options).
"""
from __future__ import annotations

import json
import os
import shutil

import pytest

from nodeagent.runtime.images import (
    ImageNotFound,
    ImageStore,
    busybox_version,
    content_listing,
    image_id,
    normalize_ref,
    version_tags,
)
from nodeagent.runtime.rootfs import mount_points, overlay_options


@pytest.mark.parametrize("ref,want", [
    ("busybox", "docker.io/library/busybox:latest"),
    ("busybox:1.35", "docker.io/library/busybox:1.35"),
    ("library/busybox:latest", "docker.io/library/busybox:latest"),
    ("docker.io/library/busybox", "docker.io/library/busybox:latest"),
    ("index.docker.io/library/busybox", "docker.io/library/busybox:latest"),
    ("me/app", "docker.io/me/app:latest"),
    ("localhost:5000/app", "localhost:5000/app:latest"),
    ("127.0.0.1:5000/a/b:v1", "127.0.0.1:5000/a/b:v1"),
    ("registry.k8s.io/pause:3.9", "registry.k8s.io/pause:3.9"),
    ("busybox@sha256:abc", "docker.io/library/busybox@sha256:abc"),
])
def test_normalize_ref(ref: str, want: str) -> None:
    assert normalize_ref(ref) == want


def test_busybox_version_and_tags() -> None:
    assert busybox_version("BusyBox v1.35.0 (Debian 1:1.35.0-4+deb12u1+b1) multi-call binary.") == "1.35.0"
    assert busybox_version("nope") is None
    assert version_tags("1.35.0") == ["1.35", "1.35.0"]


def _tree(tmp_path, content: str = "hi"):
    src = tmp_path / "src"
    (src / "bin").mkdir(parents=True)
    (src / "bin" / "tool").write_text(content)
    os.symlink("tool", src / "bin" / "alias")
    return src


def test_image_id_depends_on_content_and_config(tmp_path) -> None:
    a = image_id({"Cmd": ["x"]}, content_listing(str(_tree(tmp_path))))
    assert a == image_id({"Cmd": ["x"]}, content_listing(str(tmp_path / "src")))
    assert a != image_id({"Cmd": ["y"]}, content_listing(str(tmp_path / "src")))
    (tmp_path / "src" / "bin" / "tool").write_text("changed")
    assert a != image_id({"Cmd": ["x"]}, content_listing(str(tmp_path / "src")))


def test_import_rootfs_layout_and_resolve(tmp_path) -> None:
    store = ImageStore(str(tmp_path / "images"))
    img = store.import_rootfs("me/app:v1", str(_tree(tmp_path)), {"Cmd": ["tool"]})
    assert img.ref == "docker.io/me/app:v1" and len(img.id) == 64
    assert img.rootfs == str(tmp_path / "images" / img.id / "rootfs")
    assert (tmp_path / "images" / img.id / "rootfs" / "bin" / "tool").read_text() == "hi"
    assert os.readlink(tmp_path / "images" / img.id / "rootfs" / "bin" / "alias") == "tool"
    assert json.loads((tmp_path / "images" / img.id / "config.json").read_text()) == {"Cmd": ["tool"]}
    assert json.loads((tmp_path / "images" / "tags.json").read_text()) == {"docker.io/me/app:v1": img.id}
    assert (tmp_path / "src").exists()  # copied, not moved
    # idempotent: same content, same id, a second tag
    again = store.import_rootfs("me/app:latest", str(tmp_path / "src"), {"Cmd": ["tool"]})
    assert again.id == img.id
    assert store.resolve("me/app").id == img.id
    assert store.resolve("sha256:" + img.id[:12]).id == img.id
    assert [i.ref for i in store.list()] == ["docker.io/me/app:latest", "docker.io/me/app:v1"]
    assert not [n for n in os.listdir(tmp_path / "images") if n.startswith(".")]  # no staging left


def test_resolve_unknown_names_ref_and_available(tmp_path) -> None:
    store = ImageStore(str(tmp_path / "images"))
    with pytest.raises(ImageNotFound, match="available: none"):
        store.resolve("nginx")
    store.import_rootfs("me/app:v1", str(_tree(tmp_path)), {})
    with pytest.raises(ImageNotFound) as e:
        store.resolve("nginx:1.25")
    assert "nginx:1.25" in str(e.value) and "docker.io/me/app:v1" in str(e.value)


def test_half_made_import_is_redone(tmp_path) -> None:
    store = ImageStore(str(tmp_path / "images"))
    img = store.import_rootfs("a", str(_tree(tmp_path)), {})
    os.unlink(os.path.join(store.root, img.id, "config.json"))  # as if we crashed before it
    shutil.rmtree(os.path.join(store.root, img.id, "rootfs", "bin"))
    again = store.import_rootfs("a", str(tmp_path / "src"), {})
    assert os.path.exists(os.path.join(again.rootfs, "bin", "tool"))


@pytest.mark.skipif(not os.path.exists("/bin/busybox"), reason="needs busybox-static")
def test_import_busybox(tmp_path) -> None:
    store = ImageStore(str(tmp_path / "images"))
    img = store.import_busybox()
    assert img.ref == "docker.io/library/busybox:latest"
    assert img.config == {"Cmd": ["sh"], "WorkingDir": "/",
                          "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}
    r = img.rootfs
    assert os.path.realpath(os.path.join(r, "bin", "sh")) == os.path.join(r, "bin", "busybox")
    assert os.path.realpath(os.path.join(r, "usr", "bin", "wc")) == os.path.join(r, "bin", "busybox")
    assert not os.path.isabs(os.readlink(os.path.join(r, "bin", "sh")))  # valid inside the container
    assert oct(os.stat(os.path.join(r, "tmp")).st_mode & 0o7777) == "0o1777"
    for d in ("proc", "sys", "dev", "root", "var", "home", "etc"):
        assert os.path.isdir(os.path.join(r, d))
    with open(os.path.join(r, "etc", "passwd")) as f:
        passwd = f.read()
    assert passwd.startswith("root:x:0:0:") and "nobody:x:65534:" in passwd
    version = busybox_version(os.popen("/bin/busybox").read())
    refs = {i.ref for i in store.list()}
    assert {f"docker.io/library/busybox:{t}" for t in version_tags(version)} <= refs
    assert store.import_busybox().id == img.id  # idempotent
    assert len([n for n in os.listdir(store.root) if not n.startswith(".") and n != "tags.json"]) == 1


def test_mount_points_unescapes() -> None:
    text = ("22 27 0:21 / /proc rw,relatime - proc proc rw\n"
            "90 27 0:50 / /tmp/a\\040b rw - overlay overlay rw,lowerdir=/x\n")
    assert mount_points(text) == ["/proc", "/tmp/a b"]


def test_overlay_options() -> None:
    assert overlay_options("/l", "/u", "/w") == "lowerdir=/l,upperdir=/u,workdir=/w"
    with pytest.raises(ValueError):
        overlay_options("/l,x", "/u", "/w")
