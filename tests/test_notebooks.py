import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_notebooks_are_built_from_their_sources():
    result = subprocess.run([sys.executable, "scripts/build_notebooks.py", "--check"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_every_notebook_has_one_parameters_cell_of_literals():
    import ast

    notebooks = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert notebooks
    for path in notebooks:
        cells = [c for c in json.loads(path.read_text())["cells"] if "parameters" in c["metadata"].get("tags", [])]
        assert len(cells) == 1, path.name
        for node in ast.parse("".join(cells[0]["source"])).body:
            assert isinstance(node, ast.Assign), f"{path.name}: parameters must be plain assignments"
            ast.literal_eval(node.value)
