"""HTML sanitising: the nh3 allow-list and the rewriting of ``<img>`` and link URLs on its output.

Separate because it is a security boundary with its own callers (the message view re-sanitises the
original HTML when the user allows remote images; the legacy import sanitises stored HTML), and because
its rules should be reviewable without reading the MIME code.
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Callable

import nh3

from .charsets import _clean

_ALLOWED_TAGS = frozenset(
    {
        "a", "abbr", "address", "b", "big", "blockquote", "br", "caption", "center", "cite", "code", "col",
        "colgroup", "dd", "del", "div", "dl", "dt", "em", "font", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i",
        "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "small", "span", "strike", "strong",
        "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "tt", "u", "ul",
    }
)  # fmt: skip
_CELL_ATTRIBUTES = {"align", "valign", "width", "height", "colspan", "rowspan", "bgcolor"}
_ALLOWED_ATTRIBUTES = {
    "*": {"dir", "lang", "title", "align"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "table": {"width", "border", "cellpadding", "cellspacing", "bgcolor"},
    "td": _CELL_ATTRIBUTES,
    "th": _CELL_ATTRIBUTES,
    "tr": {"valign", "bgcolor"},
    "col": {"span", "width"},
    "colgroup": {"span", "width"},
    "font": {"color", "face", "size"},
    "ol": {"start", "type"},
    "ul": {"type"},
    "li": {"value"},
}
# Removed together with their content (the rest of the disallowed tags are unwrapped, keeping text).
_DROP_WITH_CONTENT = frozenset(
    {"script", "style", "title", "noscript", "template", "iframe", "object", "embed", "applet", "textarea",
     "select", "svg", "math", "head"}
)  # fmt: skip
_SANITIZED_URL_SCHEMES = {"http", "https", "mailto", "cid", "data"}
# Leading/trailing C0 controls and spaces are ignored by URL parsers, and so are tabs/newlines inside.
_URL_EDGE = "".join(chr(c) for c in range(33))
_DATA_IMAGE = re.compile(r"data:image/(?:png|gif|jpe?g|webp|bmp);base64,[A-Za-z0-9+/=\s]*", re.I)
_TAG = re.compile(r"<[^>]*>")
# nh3 (html5ever) serialises canonically: attribute values are double-quoted with '"', '<' and '>'
# escaped, and text has '<' escaped. On its *output* these patterns match exactly what they name.
_IMG_TAG = re.compile(r"<img\s[^>]*>")
_SRC_ATTR = re.compile(r'\ssrc="([^"]*)"')
# Link schemes nh3 lets through only because images need them; browsers ignore tabs/newlines inside.
_NOISE = r"[\t\n\r]*"
_IMAGE_ONLY_SCHEME = rf"[\x00-\x20]*(?:{_NOISE.join('data')}|{_NOISE.join('cid')}){_NOISE}:"
# Case-insensitive only where needed: a literal prefix lets the regex engine skip ahead (10x faster).
_UNSAFE_HREF = re.compile(rf'(<a(?:\s[^>]*?)?)\shref="(?i:{_IMAGE_ONLY_SCHEME})[^"]*"')
_UNSAFE_HREF_HINT = re.compile(rf'href="(?i:{_IMAGE_ONLY_SCHEME})')


def _relative_url(url: str) -> str | None:
    """Mail has no base URL, so relative URLs are meaningless and dropped; protocol-relative ones
    ("//host/x.png", a favourite of tracking pixels) are made explicit so they count as remote."""
    stripped = url.strip(_URL_EDGE)
    return "https:" + stripped if stripped.startswith("//") else None


def _build_sanitizer() -> nh3.Cleaner:
    """Built once: converting the allow-lists on every call costs more than cleaning a short message.

    No ``attribute_filter``: a Python callback per attribute doubled the cost on link-heavy newsletters;
    the two URL rules nh3 cannot express per tag (data: only for images, remote images) are applied to
    its canonical output instead (see ``sanitize_html``).
    """
    return nh3.Cleaner(
        tags=set(_ALLOWED_TAGS),
        clean_content_tags=set(_DROP_WITH_CONTENT),
        attributes={tag: set(names) for tag, names in _ALLOWED_ATTRIBUTES.items()},
        strip_comments=True,
        link_rel="noopener noreferrer",
        set_tag_attribute_values={"a": {"target": "_blank"}},
        url_schemes=set(_SANITIZED_URL_SCHEMES),
        url_relative=_relative_url,
    )


_SANITIZER = _build_sanitizer()


def _image_rewriter(allow_remote_images: bool, remote: list[bool]) -> Callable[[re.Match[str]], str]:
    """Per ``<img>`` of the sanitised output: keep cid: and raster data: images, remove (or keep, when
    allowed) remote ones and note that there were some, drop any other URL."""

    def rewrite(match: re.Match[str]) -> str:
        tag = match.group()
        src = _SRC_ATTR.search(tag)
        if src is None:
            return tag
        value = src.group(1).strip(_URL_EDGE).replace("\t", "").replace("\n", "").replace("\r", "")
        start = value[:11].lower()
        keep: str | None = None
        if start.startswith("cid:"):
            keep = "cid:" + value[4:]  # lower-case scheme: the views look for src="cid:..."
        elif start.startswith(("http:", "https:")):
            remote.append(True)
            keep = value if allow_remote_images else None
        elif start.startswith("data:") and _DATA_IMAGE.fullmatch(value):
            keep = value
        replacement = f' src="{keep}"' if keep is not None else ""
        return tag[: src.start()] + replacement + tag[src.end() :]

    return rewrite


def sanitize_html(html: str, *, allow_remote_images: bool = False) -> tuple[str, bool]:
    """Return (clean_html, had_remote_images).

    Allow-list sanitising with nh3: formatting tags only, no scripts/styles/frames/forms/SVG, no event
    handlers, no style/class/id attributes (they could restyle or overlay our own page), links open in a
    new tab without referrer. URLs: http(s) and mailto for links; cid:, http(s) and base64 raster
    ``data:`` images for ``<img>``; relative URLs are dropped (mail has no base URL). Remote images are
    tracking pixels until the user says otherwise, so their ``src`` is removed (alt text stays) unless
    ``allow_remote_images``. ``had_remote_images`` is True when the HTML referenced http(s) images
    (which were removed, unless allowed). Never raises: if the sanitiser fails, the text is returned escaped.
    """
    if not html:
        return "", False
    html = _clean(html)
    try:
        clean = _SANITIZER.clean(html)
    except Exception:  # never let a sanitiser bug take the message down
        return html_lib.escape(_TAG.sub(" ", html)), False
    remote: list[bool] = []
    if "<img" in clean:
        clean = _IMG_TAG.sub(_image_rewriter(allow_remote_images, remote), clean)
    if _UNSAFE_HREF_HINT.search(clean):
        clean = _UNSAFE_HREF.sub(r"\1", clean)
    return clean, bool(remote)
