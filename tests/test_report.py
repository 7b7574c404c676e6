"""The shampoo study's section renders in full, and the report stage embeds every plot, from a tiny made-up study."""

import base64
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from pipeline import data
from pipeline.analysis import report
from pipeline.artifacts import paths
from pipeline.stages import compare
from pipeline.stages import report as report_stage

SECTIONS = [
    "# How should an LSTM's state be managed?",
    "## The answer",
    "## The question and the design",
    "## Verdicts on every claim",
    "## Contrasts: which factors each pair differs in",
    "## Mean, bulk and tail",
    "## RMSE per regime",
    "## Baselines",
    "## Published against reproduced",
    "## How many repeats a decision needs",
    "## Forecasts of the median repeat",
    "## Every pair of regimes (exploratory)",
    "## Setup",
]


def write_png(path: Path) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    plt.imsave(path, np.eye(4))
    return path.read_bytes()


def headings(markdown: str) -> list[str]:
    return [line for line in markdown.splitlines() if line.startswith("#")]


@pytest.fixture
def rendered(evaluated):
    cfg, root = evaluated(6)
    p = paths(cfg, root)
    write_png(p.echo_plot)
    p.echo_report.write_text("# Echo memory\n\nShare solved.\n\n## Per step\n\n![steps](echo.png)\n")
    p.alphabet_report.write_text("Accuracy over seeds, no heading of its own.\n")
    comparison = compare.run(cfg, root)
    assembled = report_stage.run(cfg, root)
    return SimpleNamespace(cfg=cfg, root=root, comparison=comparison, assembled=assembled,
                           md=assembled.markdown.read_text(), html=assembled.html.read_text())


def test_every_section_renders_in_order_with_one_section_per_study(rendered):
    markdown = rendered.md
    found = headings(markdown)
    starts = [next(i for i, h in enumerate(found) if h.startswith(s)) for s in SECTIONS]
    assert starts == sorted(starts)
    studies = [h for h in found if h in ("## Alphabet", "## Echo memory")]
    assert studies == ["## Alphabet", "## Echo memory"] and "### Per step" in found  # config's order, shifted
    assert markdown.index("## Echo memory") > markdown.index("## Setup")


def test_the_report_opens_with_one_answer_line_per_expectation_and_its_scope(rendered):
    answer = rendered.md[rendered.md.index("## The answer"): rendered.md.index("## The question")]
    lines = [line for line in answer.splitlines() if re.match(r"- \*\*\d\. ", line)]
    assert len(lines) == 6
    verdicts = dict(zip(rendered.comparison.tables.verdicts.key, rendered.comparison.tables.verdicts.verdict,
                        strict=True))
    for n, line in enumerate(lines, start=1):
        assert f": {verdicts[f'E{n}']}.**" in line and ("RMSE" in line or "not run" in line)
    assert "**Scope.**" in answer and "training randomness only" in answer
    assert "(not used: `stateful` - `noreset`, compound)" in answer


def test_setup_records_checksum_engine_seeds_and_config(rendered):
    cfg, markdown = rendered.cfg, rendered.md
    setup = markdown[markdown.index("## Setup"):]
    assert data.file_sha256(paths(cfg, rendered.root).raw) in setup and "matches the pinned checksum" in setup
    assert f"engine `{cfg.engine.name}`" in setup and "paired design" in setup
    first_seed = int(rendered.comparison.tables.results.sort_values("repeat").seed.iloc[0])
    assert f"0: {first_seed}" in setup
    assert "```yaml" in setup and "margin:" in setup


def test_tables_carry_the_verdicts_contrasts_and_endpoints(rendered):
    markdown = rendered.md
    claims = markdown[markdown.index("## Verdicts on every claim"): markdown.index("## Contrasts")]
    table = claims[: claims.index("**Decision rule.**")]
    rows = [line for line in table.splitlines() if re.match(r"\| [EFS]\d ", line)]
    assert len(rows) == len(rendered.comparison.tables.verdicts) + 1  # and F1, the A-vs-A finding
    assert all(line.rstrip(" |").split("|")[-1].strip() in report.VERDICT_WORDS for line in rows)
    assert "margin ±0.5" in claims and "margin ±2" in claims  # the sensitivity table
    contrasts = markdown[markdown.index("## Contrasts"): markdown.index("## Mean, bulk")]
    assert "| E4      | `stateful` vs `noreset`" in contrasts and "compound" in contrasts
    assert "undoes the warm-up" in contrasts and "equal by construction" in contrasts
    assert "Hodges-Lehmann" in markdown and "repeats worse than persistence" in markdown
    pairs = markdown[markdown.index("## Every pair"): markdown.index("## Setup")]
    assert "<details>" in pairs and "`stateful_batch12` = `stateless_batch12`" in pairs
    assert "| persistence " in markdown and "fitted once" in markdown


def test_every_image_resolves_and_is_embedded_in_the_html(rendered):
    comparison, markdown, page = rendered.comparison, rendered.md, rendered.html
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)
    assert len(links) == 4 and "studies/echo.png" in links  # box, SE, forecasts, the study's figure
    here = rendered.assembled.markdown.parent
    assert all((here / link).is_file() for link in links)
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert len(sources) == len(links) and all(s.startswith("data:image/png;base64,") for s in sources)
    embedded = {base64.b64decode(s.split(",", 1)[1]) for s in sources}
    assert (here / "studies/echo.png").read_bytes() in embedded and comparison.plots[0].read_bytes() in embedded
    assert 'class="supported"' in page and "<details>" in page and "<table>" in page
