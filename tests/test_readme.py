"""The README's examples run: its doctests, and the quick start as a script."""

import doctest
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_doctests_pass():
    result = doctest.testfile(str(README), module_relative=False, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_readme_quick_start_runs(capsys):
    blocks = [b for b in re.findall(r"```python\n(.*?)```", README.read_text(), re.S) if ">>>" not in b]
    assert blocks, "the quick start is a plain Python block"
    exec(compile(blocks[0], "README quick start", "exec"), {})
    out = capsys.readouterr().out
    assert "Softmax regression results" in out and "Wald test" in out
