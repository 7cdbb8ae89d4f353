"""The Colab edition: every executed chapter of the book as a notebook that reads well outside it.

Google Colab (and Jupyter without ``jupyterlab-myst``) renders a notebook's Markdown as plain
CommonMark with ``$`` math: MyST roles such as ``{glue:text}`` show as raw text, directives as
``:::`` fences, and links to ``.md`` files or sibling notebooks lead nowhere. The edition is a
copy of each executed chapter whose Markdown is plain CommonMark:

* ``{glue:text}`` (and ``{glue}``, ``{glue:md}``) roles are replaced by the values of the build
  that wrote the edition, formatted as the role's format spec says (``{glue:text}`x:.3f```);
  a first cell says that the numbers come from that build, with its provenance, and that
  running the cells recomputes them;
* ``{doc}``, ``{ref}`` and relative links become absolute links to the published pages;
  citations become text; ``{eq}`` references become "(4)";
* admonitions become block quotes, dropdowns (``:class: dropdown``, exercise solutions) HTML
  ``<details>``; labelled equations get their number as a ``\\tag``; the book's MathJax macros
  are expanded;
* the cells that only feed the glue, and those the book hides, are collapsed into Colab's
  form view (first line ``#@title ...``, cell metadata ``cellView: form``); the outputs of the
  glue cells (the numbers, now in the text) and of cells the book leaves without output are
  dropped, as are stderr streams (progress bars); ``# NBVAL_CHECK_OUTPUT`` markers are removed.

The book build writes the edition to ``_build/colab/`` (``book/_ext/bl_book.py``, a local Sphinx
extension, calls :func:`build_edition` when the HTML build finishes); the publishing workflow
pushes it to the branch ``colab`` of the repository, which the book's Colab buttons open.

    python tools/colab_edition.py check _build/colab     # no MyST markup, no relative link, forms well made
    python tools/colab_edition.py test _build/colab      # nbval (smoke profile) outside the repository,
                                                         # bl_tutorial installed from a wheel of it
    python tools/colab_edition.py url                    # the published book's address, from _config.yml
    python tools/colab_edition.py branch                 # the branch the edition is published to

``test`` copies the package's sources to a temporary folder, builds a wheel there
(``pip wheel --no-deps``), installs it into a folder put first on ``PYTHONPATH`` (its
dependencies come from the running environment, as Colab's come preinstalled), copies the
edition next to it and runs ``pytest --nbval-lax`` there with ``BL_TUTORIAL_PROFILE=smoke``:
outside the repository, so neither its ``conftest.py`` nor its checkout of ``bl_tutorial`` is
seen. It prints which ``bl_tutorial`` the notebooks imported.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from ast import literal_eval
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
EDITION_NOTE_MARK = "Colab edition"
GLUE_TITLE = "#@title Numbers quoted in the text (hidden in the book; run to recompute and print them)"
HIDDEN_TITLE = "#@title Code hidden in the book (double-click to show it)"
NBVAL_MARKERS = ("# NBVAL_CHECK_OUTPUT", "# NBVAL_IGNORE_OUTPUT")
ADMONITIONS = {
    "admonition": "",
    "note": "Note",
    "tip": "Tip",
    "hint": "Hint",
    "important": "Important",
    "seealso": "See also",
    "attention": "Attention",
    "caution": "Caution",
    "warning": "Warning",
    "danger": "Danger",
    "error": "Error",
}
ABSOLUTE = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*:|//)")  # a scheme (https:, mailto:, data:, attachment:)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp"}


# ----------------------------------------------------------------------------- addresses
def pages_url(repository_url: str) -> str:
    """The GitHub Pages address of a GitHub repository: ``https://OWNER.github.io/REPO/``.

    >>> pages_url("https://github.com/bl-tutorial/boundary-loss-book")
    'https://bl-tutorial.github.io/boundary-loss-book/'
    >>> pages_url("https://github.com/someone/someone.github.io.git")
    'https://someone.github.io/'
    """
    parts = urlsplit(repository_url)
    owner, repo = [p for p in parts.path.split("/") if p][:2]
    repo = repo.removesuffix(".git")
    if parts.netloc.lower() != "github.com":
        raise ValueError(f"repository_url must be a github.com repository, got {repository_url!r}")
    if repo.lower() == f"{owner.lower()}.github.io":
        return f"https://{owner.lower()}.github.io/"
    return f"https://{owner.lower()}.github.io/{repo}/"


def book_config(config_path: Path = ROOT / "_config.yml") -> dict:
    """What the edition needs from ``_config.yml``: repository, branches, published address."""
    import yaml

    config = yaml.safe_load(config_path.read_text())
    repository = config.get("repository", {})
    sphinx = (config.get("sphinx") or {}).get("config") or {}
    url = repository["url"]
    base = (config.get("html") or {}).get("baseurl") or sphinx.get("colab_edition_base_url") or pages_url(url)
    return {
        "repository_url": url,
        "source_branch": repository.get("branch", "main"),
        "colab_branch": sphinx.get("colab_edition_branch", "colab"),
        "base_url": base if base.endswith("/") else base + "/",
        "macros": ((sphinx.get("mathjax3_config") or {}).get("tex") or {}).get("macros") or {},
    }


# ----------------------------------------------------------------------------- context
@dataclass
class Context:
    """Everything the conversion looks up, gathered from the Sphinx build (or given by hand)."""

    base_url: str  # the published book, ending in "/"
    repository_url: str = ""
    source_branch: str = "main"
    docs: dict[str, str] = field(default_factory=dict)  # docname -> page address relative to base_url
    titles: dict[str, str] = field(default_factory=dict)  # docname -> title
    glue: dict[str, dict[str, dict]] = field(default_factory=dict)  # docname -> key -> mime bundle
    equations: dict[str, tuple[str, object]] = field(default_factory=dict)  # label -> (docname, number)
    labels: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # label -> (docname, anchor, title)
    citations: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> (authors, year)
    macros: dict[str, object] = field(default_factory=dict)  # \name -> expansion (MathJax tex macros)
    substitutions: dict[str, str] = field(default_factory=dict)

    def page(self, docname: str, anchor: str = "") -> str:
        target = self.docs.get(docname, f"{docname}.html")
        return self.base_url + target + (f"#{anchor}" if anchor else "")

    def source_file(self, path: str, image: bool) -> str:
        """A file of the repository that is not a page: raw for images, GitHub's view otherwise."""
        repo = self.repository_url.rstrip("/").removesuffix(".git")
        if image and repo.startswith("https://github.com/"):
            return f"https://raw.githubusercontent.com/{repo[len('https://github.com/') :]}/{self.source_branch}/{path}"
        return f"{repo}/blob/{self.source_branch}/{path}"


class EditionError(ValueError):
    """Markup the edition cannot convert (an unknown role, a missing glue value, ...)."""


# ----------------------------------------------------------------------------- glue values
def format_plain_text(text: str, fmt_spec: str) -> str:
    """Format a glued ``text/plain`` value exactly as MyST-NB's ``{glue:text}`` role does."""
    try:
        from myst_nb.core.variables import format_plain_text as myst_format
    except ImportError:  # the same rules (myst_nb 1.x), for a run without MyST-NB
        try:
            value = literal_eval(text)
        except (SyntaxError, ValueError):
            value = text
        if fmt_spec == "":
            return str(value)
        kind = fmt_spec[-1]
        if kind == "s":
            value = str(value)
        elif kind in "bcdoxX":
            value = int(value)
        elif kind in "eEfFgGn%":
            value = float(value)
        return format(value, fmt_spec)
    return myst_format(text, fmt_spec)


def read_glue(executed_notebook: Path) -> dict[str, dict]:
    """The values glued by one executed notebook: MyST-NB keeps them next to it (NAME.glue.json),
    or in outputs marked with ``metadata.scrapbook``."""
    found: dict[str, dict] = {}
    sidecar = executed_notebook.with_suffix(".glue.json")
    if sidecar.is_file():
        for key, output in json.loads(sidecar.read_text()).items():
            found[key] = output.get("data", {})
    notebook = json.loads(executed_notebook.read_text())
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            scrapbook = output.get("metadata", {}).get("scrapbook")
            if scrapbook:
                prefix = scrapbook.get("mime_prefix", "application/papermill.record/")
                data = {k.removeprefix(prefix): v for k, v in output.get("data", {}).items()}
                found.setdefault(scrapbook["name"], data)
    return found


# ----------------------------------------------------------------------------- inline markup
ROLE_BEFORE = re.compile(r"\{([A-Za-z][\w:.+-]*)\}$")


def split_inline(text: str) -> list[tuple]:
    """Split Markdown text into ("text", s), ("code", s) and ("role", name, content) pieces.

    Code spans follow CommonMark (a run of n backticks closed by the next run of exactly n);
    a code span right after ``{name}`` is a MyST role.
    """
    pieces: list[tuple] = []
    start = i = 0
    while True:
        i = text.find("`", i)
        if i < 0:
            break
        j = i
        while j < len(text) and text[j] == "`":
            j += 1
        run = j - i
        close, k = None, j
        while True:
            k = text.find("`" * run, k)
            if k < 0:
                break
            end = k + run
            if text[k - 1] != "`" and (end >= len(text) or text[end] != "`"):
                close = k
                break
            while k < len(text) and text[k] == "`":
                k += 1
        if close is None:  # an unmatched run is literal text
            i = j
            continue
        before = text[start:i]
        role = ROLE_BEFORE.search(before)
        if role:
            pieces.append(("text", before[: role.start()]))
            pieces.append(("role", role.group(1), text[j:close]))
        else:
            pieces.append(("text", before))
            pieces.append(("code", text[i : close + run]))
        start = i = close + run
    pieces.append(("text", text[start:]))
    return [p for p in pieces if p[0] != "text" or p[1]]


def escape_markdown(text: str) -> str:
    """Plain text (a glued value) safe in CommonMark: emphasis, code, links and HTML escaped,
    ``$...$`` math left for Colab's MathJax."""
    parts = re.split(r"(\$[^$]+\$)", text)
    return "".join(p if p.startswith("$") and p.endswith("$") and len(p) > 1 else re.sub(r"([\\`*\[\]<>])", r"\\\1", p)
                   for p in parts)  # fmt: skip


def _explicit_title(content: str) -> tuple[str | None, str]:
    """``text <target>`` -> (text, target); ``target`` -> (None, target)."""
    match = re.match(r"^(.*?)\s*<([^<>]+)>$", content.strip(), re.S)
    if match and match.group(1):
        return match.group(1), match.group(2)
    return None, content.strip()


def _repository_path(target: str, docname: str) -> str:
    """A path written in the document ``docname`` (relative to it, or ``/`` for the book's root)
    as a path from the book's root."""
    if target.startswith("/"):
        return target.lstrip("/")
    parts: list[str] = []
    for part in (PurePosixPath(docname).parent / target).parts:
        if part == "..":
            if parts:
                parts.pop()
        elif part != ".":
            parts.append(part)
    return "/".join(parts)


def _resolve_docname(target: str, docname: str) -> str:
    """A document reference (``../book/notation``, ``/book/notation``, ``notation.md``) as a docname."""
    return _repository_path(re.sub(r"\.(md|ipynb|rst)$", "", target), docname)


def _cite_text(keys: str, kind: str, ctx: Context) -> str:
    texts = []
    for key in [k.strip() for k in keys.split(",") if k.strip()]:
        if key not in ctx.citations:
            raise EditionError(f"unknown citation key {key!r}")
        authors, year = ctx.citations[key]
        texts.append(f"{authors} {year}" if kind in ("p", "ps", "") else f"{authors} ({year})")
    if kind in ("p", "ps", ""):
        return f"([{'; '.join(texts)}]({ctx.page('book/bibliography')}))"
    return f"[{'; '.join(texts)}]({ctx.page('book/bibliography')})"


def convert_role(name: str, content: str, docname: str, ctx: Context) -> str:
    """The CommonMark for one MyST role."""
    if name in ("glue", "glue:", "glue:text", "glue:any", "glue:md"):
        key, fmt = content.replace("::", "\0"), ""
        if ":" in key:  # key:format (for {glue:md}, the Markdown flavour: commonmark, gfm or myst)
            key, fmt = key.rsplit(":", 1)
        key = key.replace("\0", "::")
        source = docname
        if "::" in key:
            path, key = key.split("::", 1)
            source = _resolve_docname(path, docname)
        data = ctx.glue.get(source, {}).get(key)
        if data is None:
            raise EditionError(f"no glued value {key!r} in {source}")
        if name == "glue:md":
            if "text/markdown" not in data:
                raise EditionError(f"glued value {key!r} has no text/markdown for {{glue:md}}")
            return convert_markdown(data["text/markdown"], docname, ctx)
        if "text/plain" not in data:
            raise EditionError(f"glued value {key!r} has no text/plain")
        return escape_markdown(format_plain_text(data["text/plain"], fmt if name == "glue:text" else ""))
    if name == "doc":
        title, target = _explicit_title(content)
        target_doc = _resolve_docname(target, docname)
        if target_doc not in ctx.docs and ctx.docs:
            raise EditionError(f"{{doc}} to an unknown document {target!r}")
        return f"[{title or ctx.titles.get(target_doc, target_doc)}]({ctx.page(target_doc)})"
    if name in ("ref", "numref", "std:ref"):
        title, label = _explicit_title(content)
        if label not in ctx.labels:
            raise EditionError(f"{{{name}}} to an unknown label {label!r}")
        target_doc, anchor, section = ctx.labels[label]
        return f"[{title or section}]({ctx.page(target_doc, anchor)})"
    if name in ("eq", "math:numref"):
        label = _explicit_title(content)[1]
        if label not in ctx.equations:
            raise EditionError(f"{{eq}} to an unknown equation {label!r}")
        return f"({ctx.equations[label][1]})"
    if name == "cite" or name.startswith("cite:"):
        return _cite_text(content, name.partition(":")[2], ctx)
    if name == "math":
        return f"${content}$"
    if name in ("sub", "sup"):
        return f"<{name}>{content}</{name}>"
    if name == "abbr":
        return content.split("(")[0].strip()
    if name in ("kbd", "guilabel", "menuselection", "file", "samp", "command", "program", "code", "literal"):
        return f"`{content}`"
    if name in ("term", "dfn", "emphasis"):
        return f"*{content}*"
    if name == "strong":
        return f"**{content}**"
    raise EditionError(f"no CommonMark for the role {{{name}}}")


LINK = re.compile(
    r"(!?)\[((?:[^\[\]]|\[[^\]]*\])*)\]\(\s*(<[^>]*>|[^\s()]*(?:\([^\s()]*\)[^\s()]*)*)(\s+\"[^\"]*\")?\s*\)"
)
REFERENCE_DEFINITION = re.compile(r"^( {0,3}\[[^\]]+\]:\s*)(\S+)(.*)$", re.M)
HTML_ATTRIBUTE = re.compile(r"""\b(href|src)=(["'])([^"']*)\2""")


def absolute_target(target: str, docname: str, ctx: Context, image: bool = False) -> str:
    """A link target as an absolute address: pages of the book on the published site, other
    files of the repository on GitHub."""
    if not target or ABSOLUTE.match(target):
        return target
    if target.startswith("#"):
        return ctx.page(docname, target[1:])
    path, _, anchor = target.partition("#")
    target_doc = _resolve_docname(path, docname)
    if re.search(r"\.(md|ipynb|rst)$", path) or target_doc in ctx.docs:
        return ctx.page(target_doc, anchor)
    repository_path = _repository_path(path, docname)
    return ctx.source_file(repository_path, image or PurePosixPath(path).suffix.lower() in IMAGE_SUFFIXES)


def _convert_links(text: str, docname: str, ctx: Context) -> str:
    def link(match):
        bang, label, target, title = match.groups()
        bare = target[1:-1] if target.startswith("<") else target
        return f"{bang}[{label}]({absolute_target(bare, docname, ctx, bool(bang))}{title or ''})"

    text = LINK.sub(link, text)
    text = REFERENCE_DEFINITION.sub(lambda m: m.group(1) + absolute_target(m.group(2), docname, ctx) + m.group(3), text)
    return HTML_ATTRIBUTE.sub(
        lambda m: (
            f"{m.group(1)}={m.group(2)}{absolute_target(m.group(3), docname, ctx, m.group(1) == 'src')}{m.group(2)}"
        ),
        text,
    )


def _expand_macros(text: str, ctx: Context) -> str:
    for name, expansion in ctx.macros.items():
        body = expansion[0] if isinstance(expansion, (list, tuple)) else expansion
        if isinstance(expansion, (list, tuple)) and len(expansion) > 1:
            continue  # a macro with arguments: MathJax-only, left as it is (the check lists it)
        text = re.sub(rf"\\{re.escape(name)}(?![A-Za-z])", lambda _m, b=body: b, text)
    return text


def convert_inline(text: str, docname: str, ctx: Context) -> str:
    """Roles, links, substitutions and macros of a stretch of Markdown that holds no fenced block."""
    out = []
    for piece in split_inline(text):
        if piece[0] == "code":
            out.append(piece[1])
        elif piece[0] == "role":
            out.append(convert_role(piece[1], piece[2], docname, ctx))
        else:
            chunk = re.sub(
                r"\{\{\s*([\w.-]+)\s*\}\}", lambda m: ctx.substitutions.get(m.group(1), m.group(0)), piece[1]
            )
            chunk = _expand_macros(chunk, ctx)
            out.append(_convert_links(chunk, docname, ctx))
    return "".join(out)


# ----------------------------------------------------------------------------- blocks
FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,}|:{3,})\s*(?P<info>.*)$")
DIRECTIVE_INFO = re.compile(r"^\{(?P<name>[\w:.-]+)\}\s*(?P<argument>.*)$")
MATH_LABEL = re.compile(r"\$\$\s*\((?P<label>[^()\s]+)\)\s*$")
AMSMATH = re.compile(r"^\\begin\{(?P<env>equation|multline|gather|align|alignat|flalign|eqnarray)(?P<star>\*?)\}")
# a top-level amsmath environment (MyST's amsmath extension) inside $$ ... $$, where Colab's MathJax
# reads it: the environment itself would be an error there ("erroneous nesting")
AMSMATH_IN_DOLLARS = {
    "equation": ("", ""),
    "multline": ("\\begin{gathered}", "\\end{gathered}"),
    "gather": ("\\begin{gathered}", "\\end{gathered}"),
    "align": ("\\begin{aligned}", "\\end{aligned}"),
    "flalign": ("\\begin{aligned}", "\\end{aligned}"),
    "eqnarray": ("\\begin{aligned}", "\\end{aligned}"),
    "alignat": ("\\begin{alignedat}", "\\end{alignedat}"),
}


def _amsmath_block(lines: list[str], env: str, star: str, ctx: Context) -> str:
    """``\\begin{align*} ... \\end{align*}`` as ``$$\\begin{aligned} ... \\end{aligned}$$``."""
    body = "\n".join(lines)
    body = body[body.index("}") + 1 : body.rindex(f"\\end{{{env}{star}}}")]
    begin, end = AMSMATH_IN_DOLLARS[env]
    if env == "alignat":  # its column count: \begin{alignat}{2}
        count = re.match(r"\s*(\{\d+\})", body)
        begin, body = (begin + count.group(1), body[count.end() :]) if count else (begin, body)
    tags = re.findall(r"\\tag\*?\{[^{}]*\}", body)  # one \tag, outside the aligned block
    body = re.sub(r"\\tag\*?\{[^{}]*\}", "", body).strip("\n")
    inner = f"{begin}\n{body}\n{end}" if begin else body
    return "$$\n" + _expand_macros(inner, ctx) + ("\n" + tags[0] if tags else "") + "\n$$"


def _quote(text: str) -> str:
    return "\n".join(("> " + line).rstrip() for line in text.strip("\n").split("\n"))


def _directive(name: str, argument: str, options: dict, body: str, docname: str, ctx: Context) -> str:
    classes = options.get("class", "").split()
    if name in ADMONITIONS or name == "dropdown":
        title = convert_inline(argument, docname, ctx) if argument else ADMONITIONS.get(name, "") or name.title()
        content = convert_markdown(body, docname, ctx).strip("\n")
        if name == "dropdown" or "dropdown" in classes:
            return f"<details>\n<summary><b>{title}</b></summary>\n\n{content}\n\n</details>\n"
        return _quote(f"**{title}**\n\n{content}") + "\n"
    if name == "math":
        label = options.get("label") or options.get("name")
        tag = f"\n\\tag{{{ctx.equations[label][1]}}}" if label in ctx.equations else ""
        return f"$$\n{_expand_macros(body.strip(), ctx)}{tag}\n$$\n"
    if name in ("code-block", "code", "sourcecode", "code-cell"):
        return f"```{argument}\n{body.rstrip()}\n```\n"
    if name in ("figure", "image"):
        alt = options.get("alt", "")
        image = f"![{alt}]({absolute_target(argument.strip(), docname, ctx, image=True)})"
        caption = convert_markdown(body, docname, ctx).strip()
        return image + (f"\n\n*{caption}*" if caption else "") + "\n"
    if name in ("glue:md", "glue:math", "glue:any", "glue", "glue:"):
        key = argument.strip()
        data = ctx.glue.get(docname, {}).get(key)
        if data is None:
            raise EditionError(f"no glued value {key!r} for the {{{name}}} directive")
        if name == "glue:md" and "text/markdown" in data:
            return convert_markdown(data["text/markdown"], docname, ctx)
        if name == "glue:math" and "text/latex" in data:
            return f"$$\n{data['text/latex'].strip().strip('$')}\n$$\n"
        return escape_markdown(format_plain_text(data.get("text/plain", ""), "")) + "\n"
    if name in ("bibliography", "tableofcontents", "toctree", "only", "raw"):
        return ""
    raise EditionError(f"no CommonMark for the directive {{{name}}}")


def _parse_options(lines: list[str]) -> tuple[dict, list[str]]:
    options: dict[str, str] = {}
    if lines and lines[0].strip() == "---":  # YAML block of options
        import yaml

        end = next((i for i, line in enumerate(lines[1:], 1) if line.strip() == "---"), None)
        if end is not None:
            options = {str(k): str(v) for k, v in (yaml.safe_load("\n".join(lines[1:end])) or {}).items()}
            return options, lines[end + 1 :]
    i = 0
    while i < len(lines) and re.match(r"^:[\w-]+:", lines[i]):
        key, _, value = lines[i][1:].partition(":")
        options[key] = value.strip()
        i += 1
    return options, lines[i:]


def convert_markdown(text: str, docname: str, ctx: Context) -> str:
    """One Markdown cell (MyST) as CommonMark."""
    lines = text.split("\n")
    out: list[str] = []
    prose: list[str] = []

    def flush():
        if prose:
            out.append(convert_inline("\n".join(prose), docname, ctx))
            prose.clear()

    i, in_dollars = 0, False
    while i < len(lines):
        line = lines[i]
        amsmath = None if in_dollars else AMSMATH.match(line)
        if amsmath:
            end_line = f"\\end{{{amsmath['env']}{amsmath['star']}}}"
            end = next((j for j in range(i, len(lines)) if end_line in lines[j]), len(lines) - 1)
            prose.append(_amsmath_block(lines[i : end + 1], amsmath["env"], amsmath["star"], ctx))
            i = end + 1
            continue
        in_dollars ^= line.count("$$") % 2 == 1
        fence = FENCE.match(line)
        if fence:
            marker = fence.group("fence")
            close = re.compile(rf"^ {{0,3}}{re.escape(marker[0])}{{{len(marker)},}}\s*$")
            end = next((j for j in range(i + 1, len(lines)) if close.match(lines[j])), len(lines))
            body = lines[i + 1 : end]
            directive = DIRECTIVE_INFO.match(fence.group("info").strip())
            flush()
            if directive:
                options, body = _parse_options(body)
                converted = _directive(directive["name"], directive["argument"], options, "\n".join(body), docname, ctx)
                out.append(converted.rstrip("\n"))
            elif marker[0] == ":":  # a colon fence without a directive: its content
                out.append(convert_markdown("\n".join(body), docname, ctx))
            else:  # a code block: as it is
                out.append("\n".join(lines[i : end + 1]))
            i = end + 1
            continue
        if re.match(r"^\s*\([\w:.-]+\)=\s*$", line) or re.match(r"^\s*%", line) or line.strip() == "+++":
            i += 1  # a target, a comment, a block break: nothing to show
            continue
        label = MATH_LABEL.search(line)
        if label and label.group("label") in ctx.equations:  # $$ ... $$ (label): the number as a tag
            number = ctx.equations[label.group("label")][1]
            prose.append(line[: label.start()] + f"\\tag{{{number}}}\n$$")
        elif label:
            prose.append(line[: label.start()] + "$$")
        else:
            prose.append(line)
        i += 1
    flush()
    return "\n".join(out)


# ----------------------------------------------------------------------------- notebooks
def _source(cell) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _set_source(cell, text: str) -> None:
    lines = text.split("\n")
    cell["source"] = [line + "\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])


def feeds_glue(cell) -> bool:
    """A cell that only computes and glues the numbers the text quotes (hidden in the book)."""
    source = _source(cell)
    return "remove-cell" in cell["metadata"].get("tags", []) and bool(re.search(r"\bglue(_values)?\(", source))


def _as_form(cell, title: str) -> None:
    source = _source(cell)
    _set_source(cell, f"{title}\n{source}" if not source.startswith("#@title") else source)
    cell["metadata"]["cellView"] = "form"


def _kept_output(output) -> bool:
    if output.get("output_type") == "stream" and output.get("name") == "stderr":
        return False  # progress bars and warnings: the book removes them too
    if output.get("metadata", {}).get("scrapbook"):
        return False  # a glued value's record
    data = output.get("data", {})
    return "application/vnd.jupyter.widget-view+json" not in data or "text/html" in data or "image/png" in data


def _merge_streams(outputs: list[dict]) -> list[dict]:
    """Consecutive prints to one stream as one output, as the book shows them (nb_merge_streams)."""
    merged: list[dict] = []
    for output in outputs:
        last = merged[-1] if merged else None
        if last and output.get("output_type") == "stream" == last.get("output_type") and output["name"] == last["name"]:
            text = "".join(last["text"]) + "".join(output["text"])
            last["text"] = text.splitlines(keepends=True)
        else:
            merged.append(output)
    return merged


def device_line(notebook: dict) -> str:
    """The device banner the executed notebook printed ("Device: CPU (...) | torch 2.x"), if any."""
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            text = "".join(output.get("text", "")) if output.get("output_type") == "stream" else ""
            for line in text.splitlines():
                if line.startswith("Device:"):
                    return ", ".join(line.split(" | ")[:2])
    return ""


def edition_note(title: str, page_url: str, provenance: dict, device: str) -> str:
    built = ", ".join(
        part
        for part in (
            f"`bl_tutorial` {provenance['version']}" if provenance.get("version") else "",
            f"commit {provenance['commit']}" if provenance.get("commit") else "",
            f"built {provenance['date']}" if provenance.get("date") else "",
            f"profile `{provenance['profile']}`" if provenance.get("profile") else "",
            device.removeprefix("Device: ") if device else "",
        )
        if part
    )
    return (
        f"> **{EDITION_NOTE_MARK}** of [{title}]({page_url}), a chapter of the book "
        f"*{provenance.get('book', 'The boundary loss, step by step')}*.\n>\n"
        f"> The numbers quoted in the text, and the outputs under the cells, come from the build of the "
        f"published book ({built}). Running the cells recomputes them: on another machine, device or "
        f"profile the printed results can differ a little from those in the text. The first code cell "
        f"installs `bl_tutorial` when it is missing. Cells marked *Numbers quoted in the text* hold the "
        f"code behind those numbers; double-click one to see it."
    )


def convert_notebook(executed: dict, docname: str, ctx: Context, provenance: dict) -> dict:
    """One executed chapter as its Colab edition."""
    notebook = copy.deepcopy(executed)
    notebook["metadata"].pop("widgets", None)
    notebook["metadata"]["colab"] = {"provenance": [], "toc_visible": True}
    cells = []
    for cell in notebook["cells"]:
        cell["metadata"].pop("execution", None)
        tags = cell["metadata"].get("tags", [])
        if cell["cell_type"] == "markdown":
            try:
                _set_source(cell, convert_markdown(_source(cell), docname, ctx))
            except EditionError as error:
                raise EditionError(f"{docname}, cell {cell.get('id', '?')}: {error}") from None
        elif cell["cell_type"] == "code":
            source = _source(cell)
            for marker in NBVAL_MARKERS:
                source = re.sub(rf"^{re.escape(marker)}[^\n]*\n?", "", source, flags=re.M)
            _set_source(cell, source)
            cell["outputs"] = _merge_streams([o for o in cell.get("outputs", []) if _kept_output(o)])
            if feeds_glue(cell):
                _as_form(cell, GLUE_TITLE)
                cell["outputs"], cell["execution_count"] = [], None
            elif {"remove-cell", "remove-input", "hide-input", "hide-cell"} & set(tags):
                _as_form(cell, HIDDEN_TITLE)
            if {"remove-output", "remove-cell"} & set(tags):
                cell["outputs"], cell["execution_count"] = [], None
        cells.append(cell)
    title = ctx.titles.get(docname, docname)
    note = {
        "cell_type": "markdown",
        "id": "colab-edition-note",
        "metadata": {},
        "source": [],
    }
    _set_source(note, edition_note(title, ctx.page(docname), provenance, device_line(executed)))
    notebook["cells"] = [note, *cells]
    return notebook


def provenance_now(root: Path = ROOT) -> dict:
    """Where the build comes from: package version, commit, date, profile."""
    version = ""
    init = root / "bl_tutorial" / "__init__.py"
    if init.is_file():
        match = re.search(r'__version__\s*=\s*"([^"]+)"', init.read_text())
        version = match.group(1) if match else ""
    commit = os.environ.get("GITHUB_SHA", "")[:12]
    if not commit:
        try:
            commit = subprocess.run(
                ["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True, text=True, check=True
            ).stdout.strip()
            dirty = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True).stdout
            commit += " with uncommitted changes" if dirty.strip() else ""
        except (OSError, subprocess.CalledProcessError):
            commit = ""
    profile = os.environ.get("BL_TUTORIAL_PROFILE") or "fast"
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    return {"version": version, "commit": commit, "date": date, "profile": profile}


def build_edition(
    executed_dir: Path, out_dir: Path, docnames: list[str], ctx: Context, provenance: dict | None = None
) -> list[Path]:
    """Write the edition of every notebook in ``docnames`` (executed copies in ``executed_dir``,
    ``DOCNAME.ipynb``) to ``out_dir`` (``DOCNAME.ipynb``), with a README; return the notebooks written."""
    provenance = provenance or provenance_now()
    if out_dir.exists():
        shutil.rmtree(out_dir)
    written = []
    for docname in docnames:
        executed_path = executed_dir / f"{docname}.ipynb"
        if not executed_path.is_file():
            raise EditionError(f"no executed notebook for {docname} at {executed_path}")
        ctx.glue.setdefault(docname, read_glue(executed_path))
    for docname in docnames:
        executed = json.loads((executed_dir / f"{docname}.ipynb").read_text())
        notebook = convert_notebook(executed, docname, ctx, provenance)
        target = out_dir / f"{docname}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
        written.append(target)
    links = "\n".join(f"- [{ctx.titles.get(d, d)}]({d}.ipynb)" for d in docnames)
    (out_dir / "README.md").write_text(
        "# The Colab edition of the book\n\n"
        f"The executed chapters of the book published at <{ctx.base_url}>, as notebooks whose text reads "
        "as plain Markdown (Google Colab, Jupyter without jupyterlab-myst). Generated by the book build "
        f"(`tools/colab_edition.py` in <{ctx.repository_url}>); do not edit here.\n\n{links}\n"
    )
    return written


# ----------------------------------------------------------------------------- checks
def check_notebook(notebook: dict, name: str = "") -> list[str]:
    """What a Colab reader would see that is not CommonMark, and forms that are not well made."""
    problems = []

    def say(cell, what):
        problems.append(f"{name}, cell {cell.get('id', '?')}: {what}")

    cells = notebook["cells"]
    if not cells or EDITION_NOTE_MARK not in _source(cells[0]):
        problems.append(f"{name}: the first cell is not the edition's note")
    for cell in cells:
        source = _source(cell)
        if cell["cell_type"] == "markdown":
            for piece in split_inline(source):
                if piece[0] == "role":
                    say(cell, f"MyST role {{{piece[1]}}}`{piece[2]}`")
            for line in source.split("\n"):
                if re.match(r"^\s*(`{3,}|~{3,}|:{3,})\s*\{", line):
                    say(cell, f"directive: {line.strip()}")
                elif re.match(r"^\s*:{3,}", line):
                    say(cell, f"colon fence: {line.strip()}")
                elif re.match(r"^:[\w-]+:(\s|$)", line):
                    say(cell, f"directive option: {line.strip()}")
                elif re.match(r"^\s*\([\w:.-]+\)=\s*$", line):
                    say(cell, f"MyST target: {line.strip()}")
            in_dollars = False
            for line in source.split("\n"):
                if not in_dollars and AMSMATH.match(line):
                    say(cell, f"LaTeX environment outside $$: {line.strip()}")
                in_dollars ^= line.count("$$") % 2 == 1
            prose = "".join(p[1] for p in split_inline(source) if p[0] == "text")  # code spans and blocks out
            prose = re.sub(r"^(~~~).*?^\1[^\n]*$", "", prose, flags=re.S | re.M)
            if "glue:" in prose:
                say(cell, "glue markup")
            for match in LINK.finditer(prose):
                target = match.group(3).strip("<>")
                if not ABSOLUTE.match(target):
                    say(cell, f"relative link: {match.group(0)}")
            for match in REFERENCE_DEFINITION.finditer(prose):
                if not ABSOLUTE.match(match.group(2)):
                    say(cell, f"relative link: {match.group(0).strip()}")
            for match in HTML_ATTRIBUTE.finditer(prose):
                if not ABSOLUTE.match(match.group(3)):
                    say(cell, f"relative {match.group(1)}: {match.group(3)}")
            if prose.count("<details>") != prose.count("</details>"):
                say(cell, "unbalanced <details>")
        elif cell["cell_type"] == "code":
            is_form = source.startswith("#@title")
            if is_form != (cell["metadata"].get("cellView") == "form"):
                say(cell, "a #@title first line and cellView: form go together")
            if feeds_glue(cell) and not is_form:
                say(cell, "a cell that feeds the glue is not collapsed (#@title, cellView: form)")
            if any(marker in source for marker in NBVAL_MARKERS):
                say(cell, "an nbval marker")
            if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
                say(cell, "an error output")
    return problems


def check_edition(folder: Path) -> tuple[list[Path], list[str]]:
    """Check every notebook under ``folder``; return (notebooks, problems)."""
    notebooks = sorted(folder.rglob("*.ipynb"))
    problems = []
    for path in notebooks:
        problems += check_notebook(json.loads(path.read_text()), path.relative_to(folder).as_posix())
    return notebooks, problems


# ----------------------------------------------------------------------------- running the edition
def _package_sources(repo: Path, into: Path) -> Path:
    """What a wheel is built from (pyproject.toml, README.md, bl_tutorial/), copied so that the
    build writes nothing into the repository."""
    into.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md", "LICENSE", "setup.cfg", "setup.py", "MANIFEST.in"):
        if (repo / name).is_file():
            shutil.copy2(repo / name, into / name)
    shutil.copytree(
        repo / "bl_tutorial",
        into / "bl_tutorial",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.pt", "*.npz", "*.egg-info"),
    )
    return into


def build_wheel(repo: Path, workdir: Path) -> Path:
    """``pip wheel --no-deps`` of the package, from a copy of its sources; the path of the wheel."""
    sources = _package_sources(repo, workdir / "src")
    wheels = workdir / "wheel"
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(wheels), str(sources)]
    # without build isolation when this environment can build it (offline CI); else pip fetches setuptools
    try:
        import setuptools

        local = int(setuptools.__version__.split(".")[0]) >= 77
    except ImportError:
        local = False
    attempts = [[*command, "--no-build-isolation"], command] if local else [command]
    for attempt in attempts:
        result = subprocess.run(attempt, capture_output=True, text=True)
        if result.returncode == 0:
            return next(wheels.glob("bl_tutorial-*.whl"))
    raise RuntimeError(f"could not build a wheel of {repo}:\n{result.stdout}\n{result.stderr}")


def run_edition(
    edition: Path, repo: Path = ROOT, workdir: Path | None = None, profile: str = "smoke", extra: list[str] = ()
) -> int:
    """Run every notebook of the edition under nbval, outside the repository, with bl_tutorial
    installed from a wheel of ``repo``; return pytest's exit status."""
    own = workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="bl-colab-edition-")) if own else workdir
    try:
        if workdir.resolve().is_relative_to(repo.resolve()):
            raise ValueError(f"the edition must run outside the repository, not in {workdir}")
        wheel = build_wheel(repo, workdir)
        site = workdir / "site"
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(wheel)],
            check=True,
        )
        notebooks = workdir / "edition"
        shutil.copytree(edition, notebooks)
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(site), *filter(None, [os.environ.get("PYTHONPATH")])]),
            "BL_TUTORIAL_PROFILE": profile,
        }
        where = subprocess.run(
            [sys.executable, "-c", "import bl_tutorial; print(bl_tutorial.__file__)"],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        print(f"bl_tutorial from the wheel {wheel.name}: {where}")
        if not Path(where).resolve().is_relative_to(site.resolve()):
            raise RuntimeError(f"the notebooks would import bl_tutorial from {where}, not from the wheel")
        command = [
            sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env", "-p", "no:cacheprovider",
            "--rootdir", str(workdir), "-q", str(notebooks), *extra,
        ]  # fmt: skip
        return subprocess.run(command, cwd=workdir, env=env).returncode
    finally:
        if own:
            shutil.rmtree(workdir, ignore_errors=True)


# ----------------------------------------------------------------------------- command line
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="check an edition: plain CommonMark, absolute links, forms")
    check.add_argument("folder", nargs="?", default=str(ROOT / "_build" / "colab"))
    test = commands.add_parser("test", help="run an edition under nbval outside the repository, from a wheel")
    test.add_argument("folder", nargs="?", default=str(ROOT / "_build" / "colab"))
    test.add_argument("--profile", default="smoke", help="BL_TUTORIAL_PROFILE for the run (default: smoke)")
    test.add_argument("pytest_args", nargs="*", help="more arguments for pytest (after --)")
    commands.add_parser("url", help="print the published book's address, derived from _config.yml")
    commands.add_parser("branch", help="print the branch the edition is published to (_config.yml)")
    args = parser.parse_args(argv)

    if args.command in ("url", "branch"):
        print(book_config()["base_url" if args.command == "url" else "colab_branch"])
        return 0
    folder = Path(args.folder)
    if not folder.is_dir():
        print(f"error: no edition at {folder}: build the book first (jupyter-book build .)", file=sys.stderr)
        return 2
    if args.command == "check":
        notebooks, problems = check_edition(folder)
        for problem in problems:
            print(problem)
        if not notebooks:
            print(f"error: {folder} holds no notebook", file=sys.stderr)
            return 1
        print(f"{len(notebooks)} notebooks, {len(problems)} problems.")
        return 1 if problems else 0
    return run_edition(folder, profile=args.profile, extra=args.pytest_args)


if __name__ == "__main__":
    sys.exit(main())
