"""Request bodies: read with upstream's size cap and decoded (JSON, YAML, Kubernetes
protobuf) into plain objects, every failure a `Status` (400, 413, 415), never a 500.

Upstream caps a resource request's body at 3 MiB (`MaxRequestBodyBytes`, twice etcd's
1.5 MiB request limit, since JSON shrinks on its way to protobuf) and answers 413
"Request entity too large: limit is 3145728" before decoding.  The stored object's own cap
(1.5 MiB) is `storage.MAX_OBJECT_BYTES`.  Deep nesting: Go's decoder stops at depth 10,000
("exceeded max depth"); Python's decoders stop at the interpreter's recursion limit (about
1,000 levels) and the same 400 follows.

Neighbours: `app` reads every body through `read`; `protobuf` decodes the protobuf envelope.
"""
from __future__ import annotations

from typing import Any

import orjson
import yaml
from aiohttp import web

from master.apiserver import errors, protobuf

MAX_BODY_BYTES = 3 * 1024 * 1024
# An object may nest 200 deep: orjson, which writes every answer, stops at 255 levels, and an object
# is served inside up to four more (a list's items, a Table row, a watch event of a Table).
MAX_DEPTH = 200
_ORJSON_LIMIT = 255
YAML_TYPES = ("application/yaml", "application/apply-patch+yaml")


def too_large() -> errors.APIError:
    return errors.request_entity_too_large(f"limit is {MAX_BODY_BYTES}")


async def read(request: web.Request, allow_empty: bool = False) -> Any:
    """The decoded body; None for an empty one when `allow_empty` (else a 400)."""
    length = request.content_length
    if length is not None and length > MAX_BODY_BYTES:
        raise too_large()  # refused unread
    try:
        raw = await request.read()  # the app's client_max_size stops a chunked body past the cap
    except web.HTTPRequestEntityTooLarge:
        raise too_large() from None
    if not raw:
        if allow_empty:
            return None
        raise errors.bad_request("the request body is empty")
    return decode(raw, request.content_type)


def decode(raw: bytes, ctype: str) -> Any:
    if ctype == protobuf.CONTENT_TYPE:
        try:
            return protobuf.decode_body(raw)
        except protobuf.UnknownKind as e:
            raise errors.APIError(415, "UnsupportedMediaType", str(e)) from None
        except protobuf.ProtobufError as e:
            raise errors.bad_request(f"the request body is not valid Kubernetes protobuf: {e}") from None
        except RecursionError:
            raise errors.bad_request("the request body is not valid Kubernetes protobuf: exceeded max depth") from None
    if "protobuf" in ctype:
        raise errors.unsupported_media(ctype)
    what = "YAML" if "yaml" in ctype else "JSON"
    try:
        # orjson, as upstream's decoder for unstructured objects: an integer beyond 64 bits is a float
        doc = _yaml(raw) if ctype in YAML_TYPES else orjson.loads(raw)
        return servable(doc)
    except RecursionError:
        raise errors.bad_request(f"the request body is not valid {what}: exceeded max depth") from None
    except (ValueError, yaml.YAMLError) as e:
        if "depth limit" in str(e):  # orjson's own, at 1,024 levels
            raise errors.bad_request(f"the request body is not valid {what}: exceeded max depth") from None
        raise errors.bad_request(f"the request body is not valid {what}: {e}") from None


def _encode_error(doc: Any) -> TypeError | None:
    """orjson's error encoding doc inside the levels a response may add (one C encode, a few
    microseconds for an object of a few KB), or None: "Recursion" in it means past MAX_DEPTH."""
    wrapped = doc
    for _ in range(_ORJSON_LIMIT - MAX_DEPTH - 1):
        wrapped = [wrapped]
    try:
        orjson.dumps(wrapped)
    except TypeError as e:
        return e
    return None


def too_deep(doc: Any) -> bool:
    """Whether doc nests more than MAX_DEPTH levels, so no stored object is ever unservable."""
    e = _encode_error(doc)
    return e is not None and "Recursion" in str(e)


def servable(doc: Any) -> Any:
    """doc as every answer can carry it: refused (RecursionError) past MAX_DEPTH; integers beyond 64
    bits (YAML's parser keeps them) as floats, as upstream's decoder reads them; ValueError for what
    no JSON holds (a YAML !!set, a number past a double)."""
    e = _encode_error(doc)
    if e is not None:
        if "Recursion" in str(e):
            raise RecursionError from None
        if "64-bit" not in str(e):
            raise ValueError(str(e)) from None
        try:
            return servable(_floats(doc))
        except OverflowError:
            raise ValueError("a number is out of range") from None
    return doc


def _floats(doc: Any) -> Any:
    if isinstance(doc, dict):
        return {k: _floats(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_floats(v) for v in doc]
    if isinstance(doc, int) and not isinstance(doc, bool) and not -(2**63) <= doc < 2**64:
        return float(doc)
    return doc


MAX_YAML_NODES = 1_000_000  # a document's nodes with every alias expanded


def _expanded_size(root: yaml.Node) -> int:
    """How many nodes `root` holds with its aliases expanded (they are shared nodes in the graph);
    ValueError for an alias cycle (`a: &a [*a]`: no JSON can hold it) or for a document past
    MAX_YAML_NODES (nested aliases grow exponentially: "billion laughs"), as go-yaml refuses
    "excessive aliasing"."""
    sizes: dict[int, int] = {}
    open_: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_:
            raise ValueError("the document refers to itself through an alias")
        open_.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(n) for n in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        open_.discard(key)
        if total > MAX_YAML_NODES:
            raise ValueError("the document contains excessive aliasing")
        sizes[key] = total
        return total
    return size(root)


class _Loader(yaml.SafeLoader):
    """YAML as upstream's sigs.k8s.io/yaml reads it into JSON: a timestamp stays the string it was."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def _yaml(raw: bytes) -> Any:
    loader = _Loader(raw)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()
