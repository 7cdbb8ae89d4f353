"""The book's local Sphinx extension (``_config.yml``: ``sphinx.local_extensions``).

* When the HTML build finishes, it writes the **Colab edition** of every notebook chapter to
  ``_build/colab/`` (next to ``_build/html``), with ``tools/colab_edition.py``: the executed
  notebooks with plain CommonMark Markdown, the glued numbers of this build filled in, links
  to the published pages. What it cannot convert, and what the edition's check finds, is a
  Sphinx warning (so ``jupyter-book build -W`` fails on it).
* The **Colab buttons** of the chapters open that edition: the branch ``colab_edition_branch``
  (default ``colab``) of the repository, where the publishing workflow pushes it, instead of
  the source notebook on ``repository.branch``.

Configuration (``sphinx.config`` in ``_config.yml``): ``colab_edition_branch``;
``colab_edition_base_url``, the published book's address (default: ``html.baseurl``, else
``https://OWNER.github.io/REPO/`` from ``repository.url``).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[2]


def _edition_module():
    """tools/colab_edition.py, loaded by path (tools/ is no package)."""
    name = "colab_edition"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / "colab_edition.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _repository(app) -> tuple[str, str]:
    options = app.config.html_theme_options or {}
    return options.get("repository_url", ""), options.get("repository_branch", "main")


def base_url(app) -> str:
    """The published book's address, ending in "/"."""
    url = app.config.colab_edition_base_url or app.config.html_baseurl
    if not url:
        url = _edition_module().pages_url(_repository(app)[0])
    return url if url.endswith("/") else url + "/"


def _notebooks(app) -> list[str]:
    return sorted(d for d in app.env.found_docs if str(app.env.doc2path(d)).endswith(".ipynb"))


def _citations(app) -> dict[str, tuple[str, str]]:
    """Citation key -> (authors as in the text, year), from the book's .bib files."""
    try:
        from pybtex.database import parse_file
    except ImportError:
        return {}
    found = {}
    for bib in app.config.bibtex_bibfiles or []:
        for key, entry in parse_file(str(Path(app.srcdir) / bib)).entries.items():
            people = entry.persons.get("author") or entry.persons.get("editor") or []
            names = [" ".join(p.last_names) for p in people]
            authors = (
                names[0] if len(names) == 1 else " and ".join(names) if len(names) == 2 else f"{names[0]} et al."
            ) if names else key  # fmt: skip
            found[key] = (authors, entry.fields.get("year", "n.d."))
    return found


def _context(app):
    edition = _edition_module()
    repository_url, branch = _repository(app)
    math = app.env.get_domain("math").data.get("objects", {})
    std = app.env.get_domain("std")
    docs = {d: app.builder.get_target_uri(d) for d in app.env.found_docs}
    mathjax = app.config.mathjax3_config or {}
    return edition.Context(
        base_url=base_url(app),
        repository_url=repository_url,
        source_branch=branch,
        docs=docs,
        titles={d: app.env.titles[d].astext() for d in app.env.found_docs if d in app.env.titles},
        equations={label: (doc, number) for label, (doc, number) in math.items()},
        labels={label: (doc, anchor, title) for label, (doc, anchor, title) in std.labels.items()},
        citations=_citations(app),
        macros=(mathjax.get("tex") or {}).get("macros") or {},
        substitutions=dict(getattr(app.config, "myst_substitutions", {}) or {}),
    )


def write_colab_edition(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    edition = _edition_module()
    build_dir = Path(app.outdir).parent
    out_dir = build_dir / "colab"
    docnames = _notebooks(app)
    provenance = {**edition.provenance_now(ROOT), "book": app.config.html_title or app.config.project}
    try:
        written = edition.build_edition(build_dir / "jupyter_execute", out_dir, docnames, _context(app), provenance)
    except edition.EditionError as error:
        logger.warning(f"Colab edition: {error}", type="colab_edition")
        return
    _, problems = edition.check_edition(out_dir)
    for problem in problems:
        logger.warning(f"Colab edition: {problem}", type="colab_edition")
    logger.info(f"Colab edition: {len(written)} notebooks in {out_dir}")


def point_colab_buttons_at_edition(app, pagename, templatename, context, doctree) -> None:
    """The theme's Colab button opens ``.../blob/BRANCH/PAGE.ipynb``: make it the edition's branch."""
    _, branch = _repository(app)
    target = app.config.colab_edition_branch
    for group in context.get("header_buttons", []):
        for button in group.get("buttons", []) if isinstance(group, dict) else []:
            url = button.get("url", "")
            if button.get("text") == "Colab" and f"/blob/{branch}/" in url:
                button["url"] = url.replace(f"/blob/{branch}/", f"/blob/{target}/", 1)
                button["tooltip"] = "Open the Colab edition of this chapter"


def setup(app):
    app.add_config_value("colab_edition_branch", "colab", "html")
    app.add_config_value("colab_edition_base_url", "", "html")
    # after sphinx-book-theme's add_launch_buttons (priority 501)
    app.connect("html-page-context", point_colab_buttons_at_edition, priority=600)
    app.connect("build-finished", write_colab_edition)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
