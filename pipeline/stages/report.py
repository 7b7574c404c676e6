"""Stage ``report``: the shampoo study's section and the other studies' put together as one report.

Reads compare's section (``paths.shampoo_report``) and, in the order of ``report.studies``, each study's section
(``paths.<name>_report``, its plot beside it), and writes ``report.md`` and a self-contained ``report.html``
(plots embedded). A stage of its own, so that only it depends on the other studies: ``dvc repro compare`` never
reruns them, and ``make study`` runs this stage with ``--single-item``, on the studies' committed sections.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from pipeline import errors
from pipeline.analysis import document
from pipeline.artifacts import paths
from pipeline.params import load_params


@dataclass(frozen=True)
class Report:
    markdown: Path
    html: Path
    missing: tuple[str, ...]  # studies of report.studies whose section is not there (a sweep job runs none)


def sections(cfg: DictConfig, root: Path) -> dict[str, Path]:
    """Each study of ``report.studies`` -> its section's file."""
    p = paths(cfg, root)
    return {name: getattr(p, f"{name}_report") for name in cfg.report.studies}


def assemble(first: Path, studies: dict[str, Path], report_md: Path) -> tuple[str, tuple[str, ...]]:
    """(the report's markdown, the studies left out): ``first`` as it is, then each study's section that exists,
    its headings under ``##``; a closing line names the studies left out and the stage that writes each."""
    here = report_md.parent
    missing = tuple(name for name, path in studies.items() if not path.is_file())
    parts = [document.section(first, here, level=None),
             *(document.section(path, here) for name, path in studies.items() if name not in missing)]
    if missing:
        runs = ", ".join(f"`dvc repro {name}`" for name in missing)
        parts.append(f"*Not in this report: the sections of {', '.join(missing)} (their stages write them: {runs}).*\n")
    return "\n".join(parts), missing


def run(cfg: DictConfig, root: Path) -> Report:
    p = paths(cfg, root)
    if not p.shampoo_report.is_file():
        raise errors.MissingInput(f"{p.shampoo_report} is missing: run the compare stage first (dvc repro compare).")
    text, missing = assemble(p.shampoo_report, sections(cfg, root), p.report_md)
    document.write(text, p.report_md, p.report_html)
    return Report(p.report_md, p.report_html, missing)


def main() -> None:
    done = run(load_params(), Path.cwd())
    print(f"wrote {done.markdown} and {done.html}"
          + (f" (without {', '.join(done.missing)}: not run)" if done.missing else ""))


if __name__ == "__main__":
    errors.cli(main)
