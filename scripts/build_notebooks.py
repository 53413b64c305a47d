"""Build notebooks/*.ipynb from their sources notebooks/src/*.py (percent format).

    python scripts/build_notebooks.py          # rebuild all
    python scripts/build_notebooks.py --check  # exit 1 if an .ipynb is out of date

Cells start with ``# %%`` (code) or ``# %% [markdown]`` (markdown, lines prefixed by
``# ``); ``# %% [parameters]`` marks the papermill parameters cell.
"""

import sys
from pathlib import Path

import nbformat

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def build(source: Path) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata.update({"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                              "language_info": {"name": "python"}})
    for chunk in source.read_text().split("# %%")[1:]:
        header, _, body = chunk.partition("\n")
        body = body.strip("\n")
        if "[markdown]" in header:
            text = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in body.splitlines())
            notebook.cells.append(nbformat.v4.new_markdown_cell(text))
        else:
            cell = nbformat.v4.new_code_cell(body)
            if "[parameters]" in header:
                cell.metadata["tags"] = ["parameters"]
            notebook.cells.append(cell)
    for index, cell in enumerate(notebook.cells):
        cell.id = f"{source.stem.split('_')[0]}-{index:02d}"
    return notebook


def main() -> int:
    stale = []
    for source in sorted((NOTEBOOKS / "src").glob("*.py")):
        target = NOTEBOOKS / f"{source.stem}.ipynb"
        text = nbformat.writes(build(source)) + "\n"
        if not target.exists() or target.read_text() != text:
            stale.append(target.name)
            if "--check" not in sys.argv:
                target.write_text(text)
    if "--check" in sys.argv and stale:
        print("out of date (run scripts/build_notebooks.py):", ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
