"""Directive names shared by the reST and MyST readers (Sphinx's, its extensions', docutils')."""

from __future__ import annotations

# fmt: off
# Read as admonition blocks (their body's prose).
ADMONITIONS = frozenset([
    "note", "warning", "tip", "important", "hint", "caution", "attention", "danger", "error", "seealso",
    "admonition", "todo", "versionadded", "versionchanged", "deprecated", "versionremoved",
])
# How a version note starts, as Sphinx renders it ("Added in version 4.0").
VERSION_NOTES = {
    "versionadded": "Added in version", "versionchanged": "Changed in version",
    "deprecated": "Deprecated since version", "versionremoved": "Removed in version",
}
# Bodies that are examples.
CODE = frozenset([
    "code", "code-block", "sourcecode", "doctest", "testcode", "testoutput", "testsetup", "testcleanup",
    "code-cell", "ipython", "jupyter-execute", "parsed-literal", "prompt", "console", "highlight-code",
    "runblock", "program-output", "command-output",
])
# Neither prose nor an example: tables of contents, API stubs generated elsewhere, images, metadata.
SKIPPED = frozenset([
    "toctree", "autosummary", "index", "module", "currentmodule", "meta", "contents", "raw", "include",
    "literalinclude", "image", "figure", "highlight", "default-role", "default-domain", "sectionauthor",
    "codeauthor", "moduleauthor", "tabularcolumns", "sectnum", "header", "footer", "target-notes",
    "graphviz", "digraph", "graph", "inheritance-diagram", "mermaid", "plot", "math", "title",
    "spelling:word-list", "only-html", "rst-class", "cssclass", "card-carousel", "include-markdown",
    "program", "py:module", "py:currentmodule", "c:namespace", "cpp:namespace", "js:module",
])
# Sphinx object descriptions: a signature, then prose about what it names.
DESCRIPTIONS = frozenset([
    "option", "cmdoption", "envvar", "describe", "object", "function", "method", "class", "attribute",
    "data", "exception", "decorator", "decoratormethod", "staticmethod", "classmethod", "property",
    "confval", "type", "member", "macro", "struct", "union", "enum", "enumerator", "var", "setting",
    "event", "role", "directive", "directive:option", "fixture", "command", "flag", "program-option",
])
# Domains whose prefix goes ("py:function" is "function"; "rst:role" describes a role).
DOMAINS = frozenset(["py", "std", "c", "cpp", "js", "rst", "http", "click", "sphinx", "mypy", "confval"])
# fmt: on


def base_name(name: str) -> str:
    """A directive's name without its domain prefix, lowercase."""
    name = name.lower()
    domain, _, rest = name.partition(":")
    return rest if rest and domain in DOMAINS else name


def is_skipped(name: str) -> bool:
    base = base_name(name)
    return name.lower() in SKIPPED or base in SKIPPED or base.startswith("auto")


def is_description(name: str) -> bool:
    """An object description: a known name with or without its domain; `rst:role` too, but not
    a bare `role` (docutils' directive that defines a role)."""
    lowered = name.lower()
    if lowered == "role":
        return False
    return base_name(lowered) in DESCRIPTIONS and not is_skipped(lowered)
