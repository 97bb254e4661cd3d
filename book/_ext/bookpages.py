"""Sphinx hooks for the two-language book (loaded through ``sphinx.local_extensions`` in ``_config.yml``).

* "Previous" and "Next" stay within a language: the table of contents runs index -> 中文 part -> English part, so
  the last Chinese chapter's "Next" would lead into the English preface and the index's "Next" would send every
  reader to the Chinese one. A link into the other language (or out of the index) is dropped; the index links to
  both prefaces itself, and every page links to its twin.
* An inline script added twice (sphinx-thebe's settings, which declare constants) is kept once.
* Pages whose notebook stored ipywidgets state but show no widget view (the explorers' static HTML is shown
  instead, see ``nb_mime_priority_overrides``) do not embed that state or load the widget manager for nothing.
"""
from __future__ import annotations

WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _lang(pagename: str | None) -> str | None:
    parts = (pagename or "").split("/")
    return parts[1] if len(parts) > 2 and parts[0] == "book" and parts[1] in ("zh", "en") else None


def page_context(app, pagename, templatename, context, doctree):
    here = _lang(pagename)
    for key in ("prev", "next"):
        link = context.get(key)
        if not link:
            continue
        there = _lang(_resolve(app, pagename, link["link"]))
        if here is None or there != here:
            context[key] = None
    files = context.get("script_files", [])
    seen, keep = set(), []
    for f in files:
        key = (str(getattr(f, "filename", f) or ""), repr(sorted((getattr(f, "attributes", {}) or {}).items())))
        if key in seen:  # the same inline script twice (thebe's settings): the second throws a SyntaxError
            continue
        seen.add(key)
        if WIDGET_VIEW not in context.get("body", "") and _is_widget_file(f):
            continue
        keep.append(f)
    files[:] = keep


def _is_widget_file(f) -> bool:
    attrs = getattr(f, "attributes", {}) or {}
    name = getattr(f, "filename", None) or ""
    return attrs.get("type") == WIDGET_STATE or "html-manager" in name or "require.min.js" in name


def _resolve(app, pagename: str, link: str) -> str:
    """The document name that ``link`` (relative to ``pagename``'s HTML file) points to."""
    import posixpath

    path = link.split("#", 1)[0]
    base = posixpath.dirname(pagename)
    doc = posixpath.normpath(posixpath.join(base, path))
    for suffix in (app.builder.link_suffix, ".html"):
        if doc.endswith(suffix):
            doc = doc[: -len(suffix)]
            break
    return doc


def setup(app):
    app.connect("html-page-context", page_context, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
