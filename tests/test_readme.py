"""The README's examples run as printed: the three extensions of "Extending the book", in the smoke profile,
without editing the package."""

import re
from pathlib import Path

import pytest

from bl_tutorial.data import synthetic
from conftest import use_small_standins

README = Path(__file__).resolve().parents[1] / "README.md"


def _extension_examples() -> dict[str, str]:
    section = README.read_text().split("## Extending the book", 1)[1].split("\n## ", 1)[0]
    titles = re.findall(r"\*\*A new (\w+)\.\*\*", section)
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(titles) == len(blocks) == 3, "three examples, each under its bold title"
    return dict(zip(titles, blocks))


EXAMPLES = _extension_examples()


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_each_extension_runs_as_printed_in_at_most_15_lines(name, small_cache, monkeypatch, capsys):
    code = EXAMPLES[name]
    lines = [line for line in code.splitlines() if line.strip()]
    assert len(lines) <= 15, f"the {name} example has {len(lines)} lines"
    use_small_standins(monkeypatch, drive=synthetic.DriveStandinConfig(n_training=4, n_test=1))
    monkeypatch.chdir(small_cache.parent)  # nothing is written where the tests run
    exec(compile(code, f"README: a new {name}", "exec"), {"__name__": f"readme_{name}"})
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed and re.match(r"\S+ minus \S+: .+ [+-]\d\.\d{3}", printed[-1]), printed[-1:]
