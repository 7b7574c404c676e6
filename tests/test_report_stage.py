"""The report stage: compare's section, then each study of report.studies in its order, as report.md/.html."""

import base64
import re
import subprocess
import sys

import numpy as np
import pytest

from pipeline.artifacts import paths
from pipeline.errors import MissingInput
from pipeline.params import PROJECT_ROOT
from pipeline.stages import report


def png(path, value: float) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    plt.imsave(path, np.full((2, 2), value), vmin=0, vmax=1)
    return path.read_bytes()


@pytest.fixture
def sections(compose, tmp_path):
    cfg = compose("report.studies=[sine,echo,alphabet]")
    p = paths(cfg, tmp_path)
    shampoo = "# Shampoo\n\n*written by compare*\n\n## The answer\n\n![box](boxplot.png)\n"
    p.shampoo_report.parent.mkdir(parents=True)
    p.shampoo_report.write_text(shampoo)
    images = {"box": png(p.boxplot, 0.2), "sine": png(p.sine_plot, 0.8)}
    p.sine_report.write_text("# Sine\n\nLoop vs single fit.\n\n![fit](sine.png)\n")
    p.echo_report.write_text("Echo, without a heading.\n")
    return cfg, tmp_path, shampoo, images


def test_compares_section_comes_first_as_written_then_the_studies_in_config_order(sections):
    cfg, root, shampoo, images = sections
    done = report.run(cfg, root)
    text = done.markdown.read_text()
    assert text.startswith(shampoo) and done.missing == ("alphabet",)
    found = [line for line in text.splitlines() if line.startswith("#")]
    assert found == ["# Shampoo", "## The answer", "## Sine", "## Echo"]
    assert "](studies/sine.png)" in text  # relative to the report, not to the study's folder
    assert text.rstrip().endswith("*Not in this report: the sections of alphabet (their stages write them: "
                                  "`dvc repro alphabet`).*")
    sources = re.findall(r'<img src="data:image/png;base64,([^"]+)"', done.html.read_text())
    assert {base64.b64decode(s) for s in sources} == set(images.values())  # both embedded: self-contained


def test_without_compares_section_it_names_the_stage_to_run(sections):
    cfg, root, _, _ = sections
    paths(cfg, root).shampoo_report.unlink()
    with pytest.raises(MissingInput, match=r"shampoo\.md is missing: run the compare stage first \(dvc repro compare"):
        report.run(cfg, root)
    assert not paths(cfg, root).report_md.exists()


def test_the_stage_imports_neither_the_statistics_nor_plotting_nor_tracking():  # it should start in a blink
    code = "import sys, pipeline.stages.report; print(sorted({'scipy', 'matplotlib', 'mlflow'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
