"""URL rewriting for proxied responses (pure), as upstream's proxy transport
does for `services/proxy`, `pods/proxy` and `nodes/proxy`: a `Location`
header or an HTML link that points at the backend itself (no host, the
backend's host, or the host the client asked) with an absolute path gets
the proxy prefix (`/api/v1/namespaces/d/services/web/proxy`) put in front,
so that the page keeps working through the API server.  Relative links and
links to other hosts are left alone.

Neighbours: `httpproxy` calls `rewrite_url` (Location) and `rewrite_html`.
"""
from __future__ import annotations

import posixpath
from html.parser import HTMLParser
from urllib.parse import urlsplit, urlunsplit

# element -> attributes holding a URL (upstream's table)
URL_ATTRS: dict[str, frozenset[str]] = {k: frozenset(v.split()) for k, v in {
    "a": "href", "applet": "codebase", "area": "href", "audio": "src", "base": "href", "blockquote": "cite",
    "body": "background", "button": "formaction", "command": "icon", "del": "cite", "embed": "src",
    "form": "action", "frame": "longdesc src", "head": "profile", "html": "manifest",
    "iframe": "longdesc src", "img": "longdesc src usemap", "input": "src usemap formaction", "ins": "cite",
    "link": "href", "object": "classid codebase data usemap", "q": "cite", "script": "src", "source": "src",
    "video": "poster src",
}.items()}


def rewrite_url(url: str, prefix: str, backend_host: str, request_host: str) -> str:
    """`url` with `prefix` in front of its path when it addresses the backend by an absolute path;
    scheme and host are dropped then (upstream's rewriter runs with an empty scheme and host)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    other_host = parts.netloc != "" and parts.netloc not in (backend_host, request_host)
    if other_host or not parts.path.startswith("/"):
        return url
    path = parts.path
    if not path.startswith(prefix):
        path = posixpath.normpath(f"{prefix}/{path}")  # Go's path.Join cleans as well
        if parts.path.endswith("/") and not path.endswith("/"):
            path += "/"
    return urlunsplit(("", "", path, parts.query, parts.fragment))


class _Rewriter(HTMLParser):
    """Re-emits the document as read, rewriting only the URL attributes of the elements in URL_ATTRS."""

    def __init__(self, prefix: str, backend_host: str, request_host: str):
        super().__init__(convert_charrefs=False)
        self.out: list[str] = []
        self.args = (prefix, backend_host, request_host)

    def _tag(self, tag: str, attrs: list[tuple[str, str | None]], close: str) -> None:
        wanted = URL_ATTRS.get(tag, frozenset())
        new = [(k, rewrite_url(v, *self.args) if k in wanted and v else v) for k, v in attrs]
        if new == attrs:  # untouched tags keep their exact text
            self.out.append(self.get_starttag_text() or "")
            return
        parts = [tag] + [k if v is None else f'{k}="{_escape_attr(v)}"' for k, v in new]
        self.out.append("<" + " ".join(parts) + close + ">")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._tag(tag, attrs, "")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._tag(tag, attrs, "/")

    def handle_endtag(self, tag: str) -> None:
        self.out.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        self.out.append(data)

    def handle_entityref(self, name: str) -> None:
        self.out.append(f"&{name};")

    def handle_charref(self, name: str) -> None:
        self.out.append(f"&#{name};")

    def handle_comment(self, data: str) -> None:
        self.out.append(f"<!--{data}-->")

    def handle_decl(self, decl: str) -> None:
        self.out.append(f"<!{decl}>")

    def handle_pi(self, data: str) -> None:
        self.out.append(f"<?{data}>")

    def unknown_decl(self, data: str) -> None:
        self.out.append(f"<![{data}]>")


def _escape_attr(v: str) -> str:
    return v.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")


def rewrite_html(document: str, prefix: str, backend_host: str, request_host: str) -> str:
    r = _Rewriter(prefix, backend_host, request_host)
    r.feed(document)
    r.close()
    return "".join(r.out)
