"""Fragments fitted into a report (headings shifted, links rebased) and rendered as self-contained HTML."""

import pytest

from pipeline.analysis import document


def headings(markdown: str) -> list[str]:
    return [line for line in markdown.splitlines() if line.startswith("#")]


def test_a_fragment_becomes_one_section_with_links_relative_to_the_report(tmp_path):
    fragment = tmp_path / "reports" / "studies" / "sine" / "sine.md"
    fragment.parent.mkdir(parents=True)
    fragment.write_text("### Loop vs single fit\n\n#### Detail\n\n![fit](plots/fit.png) and ![web](https://x/y.png)\n")
    text = document.section(fragment, tmp_path / "reports")
    assert headings(text) == ["## Loop vs single fit", "### Detail"]
    assert "](studies/sine/plots/fit.png)" in text and "](https://x/y.png)" in text


def test_a_fragment_kept_at_its_own_levels_has_only_its_links_rebased(tmp_path):
    fragment = tmp_path / "sections" / "study.md"
    fragment.parent.mkdir()
    fragment.write_text("# Title\n\n## Part\n\n![box](box.png)\n")
    text = document.section(fragment, tmp_path / "reports", level=None)
    assert text == "# Title\n\n## Part\n\n![box](../sections/box.png)\n"
    untitled = tmp_path / "sections" / "loop_fits.md"
    untitled.write_text("No heading.\n")
    assert headings(document.section(untitled, tmp_path / "sections", level=3)) == ["### Loop fits"]


def test_html_refuses_a_link_to_a_missing_image(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"gone\.png"):
        document.to_html("![lost](gone.png)\n", tmp_path)
