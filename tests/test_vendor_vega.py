"""The offline page `dvc plots show` / `dvc plots diff` fill (scripts/vendor-vega, vendor/vega/)."""

import json
import re

from dvc_render.html import render_html
from dvc_render.vega import VegaRenderer

from pipeline.params import PROJECT_ROOT

VENDOR = PROJECT_ROOT / "vendor" / "vega"


def test_dvc_is_configured_to_fill_the_vendored_template():
    config = (PROJECT_ROOT / ".dvc" / "config").read_text()
    found = re.search(r"^\[plots\]\s+html_template = (\S+)$", config, re.M)
    assert found and (PROJECT_ROOT / ".dvc" / found.group(1)).resolve() == VENDOR / "template.html"
    assert "/dvc_plots/" in (PROJECT_ROOT / ".gitignore").read_text().split()


def test_the_template_inlines_every_pinned_package_and_keeps_its_licence():
    template = (VENDOR / "template.html").read_text()
    for name, pin in json.loads((VENDOR / "versions.json").read_text()).items():
        assert f"<script>/* {name} {pin['version']} (npm)" in template
        assert "Redistribution and use in source and binary forms" in (VENDOR / f"LICENSE-{name}").read_text()


def test_a_page_dvc_renders_from_it_loads_nothing_from_the_network(tmp_path):
    plot = VegaRenderer([{"repeats": 5, "se": 2.0, "rev": "workspace"}], "se.csv", x="repeats", y="se")
    render_html([plot], tmp_path / "index.html", html_template=VENDOR / "template.html")
    html = (tmp_path / "index.html").read_text()
    assert "vegaEmbed('#" in html and html.count("<script src=") == 0  # DVC's CDN scripts were not added
    assert "{plot_divs}" not in html and "{refresh_tag}" not in html
