"""What a user sees, taken in a real headless browser: the MLflow UI and the reports.

``scripts/screenshots`` (``python -m pipeline.tools.screenshots``) starts ``mlflow server`` on the store,
opens it in headless Chromium (Debian's ``chromium``, driven by Playwright) at a 1400 px wide viewport,
and does what a new user would: opens the experiment, picks the headline metric columns, expands the
newest study's parent run, opens the parent, a child (with its RMSE histogram) and the compare view of
the children; then the HTML report, and the ``dvc plots show`` page with the network blocked. Each view
is saved as a PNG under ``--out`` and checked for what it must show (metric values in the parent's and the
children's rows, the verdicts, the report's summary table, drawn Vega plots); a view that lacks any of it
is listed and the exit status is 1.

    scripts/screenshots                                   # the project's store, report and dvc_plots/
    scripts/screenshots --store sqlite:////abs/mlflow.db --report outputs/.../reports/report.html --plots ''
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline import tracking
from pipeline.params import PROJECT_ROOT, compose_config

if TYPE_CHECKING:  # runs come from pipeline.tracking, the one module that talks to MLflow
    from mlflow.entities import Run

VIEWPORT = {"width": 1400, "height": 900}
CHILD_COLUMNS = ("rmse_mean", "rmse_median", "share_worse_than_persistence", "train_seconds")
# The compare view lists every metric alphabetically in a table it renders lazily: these come first in it.
COMPARED = CHILD_COLUMNS[:3]
PARENT_STAT = "rmse_mean"  # the parent's column per regime: rmse_mean/<regime>
PARENT_COLUMNS_SHOWN = 2  # that many regimes' columns beside the children's, to fit the viewport
# ms a view may take to appear: the first page of a fresh server is slow on a busy CI machine
LOADED = int(os.environ.get("SCREENSHOTS_TIMEOUT_MS", 90_000))
EXPANDER = 'button[data-component-id$="runnamecellrenderer.tsx_46"]'  # the +/- before a parent run's name


def chromium() -> str | None:
    """The system Chromium (``CHROMIUM`` or Debian's ``chromium``), or None."""
    return os.environ.get("CHROMIUM") or next(
        (found for name in ("chromium", "chromium-browser", "google-chrome") if (found := shutil.which(name))), None)


@dataclass(frozen=True)
class Study:
    experiment_id: str
    experiment_name: str
    parent: Run
    children: list[Run]  # regime runs, in the order they were logged


def newest_study(uri: str, experiment: str) -> Study:
    """The newest parent run holding regime runs, and those runs."""
    client = tracking.client(uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise ValueError(f"{uri} has no experiment {experiment!r}: run a study first (make study).")
    runs = client.search_runs([found.experiment_id], order_by=["attributes.start_time DESC"], max_results=1000)
    for parent in (r for r in runs if "regime" not in r.data.tags and "study" not in r.data.tags):
        children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id
                    and "regime" in r.data.tags]
        if children:
            return Study(found.experiment_id, found.name, parent, sorted(children, key=lambda r: r.info.start_time))
    raise ValueError(f"experiment {experiment!r} holds no parent run with regime runs under it: run a study.")


@dataclass
class Views:
    """What was seen (one line per check) and what was missing."""

    out: Path
    seen: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def check(self, ok: bool, what: str) -> None:
        (self.seen if ok else self.missing).append(what)

    def shot(self, page, name: str) -> None:
        path = self.out / f"{name}.png"
        page.screenshot(path=str(path))
        self.seen.append(f"saved {path}")


def pick_columns(page, names: Sequence[str]) -> None:
    """Columns -> tick each name in the list, as a user adds metric columns; the default attribute columns
    that say nothing here (dataset, source, models) are unticked to make room."""
    page.get_by_role("button", name="Columns", exact=True).click()  # not "Show more columns (N total)"
    metrics = page.locator("[class*=tree-treenode]").filter(has=page.get_by_title(re.compile(r"^Metrics \(")))
    metrics.first.wait_for(timeout=LOADED)
    closed = metrics.locator("[class*=tree-switcher_close]")  # the group starts folded in some stores
    if closed.count():
        closed.first.click()
    for name in ("Dataset", "Source", "Models", *names):
        page.get_by_text(name, exact=True).last.click()
    page.keyboard.press("Escape")


def header(page, column: str):
    return page.locator("[role=columnheader][col-id]").filter(
        has=page.get_by_text(re.compile(f"^{re.escape(column)}$"))).first


def cell_text(page, run: Run, column: str) -> str:
    """What the runs table shows in ``run``'s row under the column headed ``column``."""
    col_id = header(page, column).get_attribute("col-id", timeout=LOADED)
    return page.locator(f'[row-id="{run.info.run_id}"] [col-id="{col_id}"]').last.inner_text(timeout=LOADED).strip()


def runs_table(page, base: str, study: Study, views: Views) -> None:
    parent_columns = sorted(k for k in study.parent.data.metrics if k.startswith(f"{PARENT_STAT}/"))
    parent_columns = parent_columns[:PARENT_COLUMNS_SHOWN]
    # MLflow 3.17's UI opens every experiment in the view of its sidebar's toggle, GenAI until a user picks
    # "Model training" (remembered by the browser): pick it, then open the experiment from the list.
    page.goto(f"{base}/#/experiments")
    page.get_by_text("Model training", exact=True).first.click(timeout=LOADED)
    page.get_by_role("link", name=study.experiment_name, exact=True).first.click(timeout=LOADED)
    page.get_by_text("matching runs").wait_for(timeout=LOADED)
    views.check(page.get_by_text(re.compile(r"^(Training runs|Runs)$")).count() > 0,
                "the experiment opens on its runs table (model training), not on traces")
    with contextlib.suppress(Exception):  # the assistant's panel, where the UI opens it, takes a quarter of the width
        page.get_by_role("button", name="Close").click(timeout=3000)
    pick_columns(page, [*CHILD_COLUMNS, *parent_columns])
    row = page.locator(f'[row-id="{study.parent.info.run_id}"]').first
    row.locator(EXPANDER).click()
    child = study.children[0]
    page.locator(f'[row-id="{child.info.run_id}"]').first.wait_for(timeout=LOADED)
    for run, columns in ((study.parent, parent_columns), *((c, CHILD_COLUMNS) for c in study.children)):
        for column in columns:
            text = cell_text(page, run, column)
            views.check(column in run.data.metrics and text not in ("", "-"),
                        f"runs table: {run.info.run_name} shows {column} ({text or 'empty'})")
    views.shot(page, "runs")


def run_page(page, base: str, study: Study, run: Run, name: str, expect: Sequence[str], views: Views) -> None:
    page.goto(f"{base}/#/experiments/{study.experiment_id}/runs/{run.info.run_id}")
    page.get_by_text(run.info.run_name, exact=True).first.wait_for(timeout=LOADED)
    page.get_by_text(expect[0]).first.wait_for(timeout=LOADED)
    body = page.inner_text("body")
    for text in expect:
        views.check(text in body, f"{name} page: {text}")
    views.shot(page, name)


def histogram(page, base: str, study: Study, run: Run, views: Views) -> None:
    page.goto(f"{base}/#/experiments/{study.experiment_id}/runs/{run.info.run_id}/artifacts/rmse_histogram.png")
    image = page.locator("img[src*='rmse_histogram.png'], img[src^='blob:']").first
    image.wait_for(timeout=LOADED)
    views.check(image.evaluate("i => i.complete && i.naturalWidth > 0"), "child artifacts: the RMSE histogram")
    views.shot(page, "child-histogram")


def compare_view(page, base: str, study: Study, views: Views) -> None:
    ids = ",".join(f'"{c.info.run_id}"' for c in study.children)
    page.goto(f'{base}/#/compare-runs?runs=[{ids}]&experiments=["{study.experiment_id}"]')
    for column in COMPARED:  # the metric selector names the first before the runs' table has loaded
        page.get_by_text(column).first.wait_for(timeout=LOADED)
    body = page.inner_text("body")
    for child in study.children:
        views.check(child.info.run_name in body, f"compare view: {child.info.run_name}")
    views.check(all(c in body for c in COMPARED), "compare view: the headline metrics")
    views.shot(page, "compare")


def report(page, path: Path, regimes: Sequence[str], views: Views) -> None:
    page.goto(path.resolve().as_uri())
    heading = page.locator("h1").first.inner_text()
    views.check("LSTM" in heading, f"report: its title ({heading[:60]})")
    views.check(page.locator("h2").first.inner_text().strip() == "The answer", "report: it opens with the answer")
    tables = [t.inner_text() for t in page.locator("table").all()]
    listed = ", ".join(sorted(regimes))
    views.check(any(all(r in t for r in regimes) for t in tables), f"report: a table lists {listed}")
    views.shot(page, "report")


def plots(page, path: Path, views: Views) -> None:
    page.route("http*://**", lambda route: route.abort())  # offline: a CDN script would fail here
    page.goto(path.resolve().as_uri())
    page.wait_for_load_state("load")
    specs = path.read_text().count("vegaEmbed(")  # one call per Vega plot, replaced by the plot once drawn
    with contextlib.suppress(Exception):
        page.locator(".vega-embed canvas, .vega-embed svg.marks").nth(max(specs - 1, 0)).wait_for(timeout=LOADED)
    drawn = page.locator(".vega-embed canvas, .vega-embed svg.marks").count()
    views.check(specs > 0 and drawn >= specs, f"dvc plots, offline: {drawn} of {specs} Vega plots drawn")
    views.shot(page, "dvc-plots")


def take(uri: str, experiment: str, report_html: Path | None, plots_html: Path | None, out: Path,
         server: str | None = None) -> Views:
    from playwright.sync_api import sync_playwright  # a dev dependency, imported where a browser is driven

    browser_path = chromium()
    if browser_path is None:
        raise FileNotFoundError("no Chromium found: apt-get install chromium (or set CHROMIUM=/path/to/chrome).")
    out.mkdir(parents=True, exist_ok=True)
    views = Views(out)
    study = newest_study(uri, experiment)
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack, sync_playwright() as playwright:
        base = server or stack.enter_context(tracking.serve(uri, Path(tmp) / "server.log"))
        browser = playwright.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
        page = browser.new_page(viewport=VIEWPORT)
        regimes = [c.data.tags["regime"] for c in study.children]
        parent_expect = [f"{PARENT_STAT}/{regimes[0]}", "share_worse_than_persistence", "verdict."]
        try:
            runs_table(page, base, study, views)
            run_page(page, base, study, study.parent, "parent", parent_expect, views)
            run_page(page, base, study, study.children[0], "child", [*CHILD_COLUMNS, "regime.name"], views)
            histogram(page, base, study, study.children[0], views)
            compare_view(page, base, study, views)
            if report_html:
                report(page, report_html, regimes, views)
            if plots_html:
                plots(browser.new_page(viewport=VIEWPORT), plots_html, views)
        except Exception:  # a view that never appeared: what the page showed instead
            views.shot(page, "failed")
            raise
        finally:
            browser.close()
    return views


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/screenshots", description=__doc__.splitlines()[0])
    cfg = compose_config([])
    parser.add_argument("--store", default=None, help="MLflow tracking URI (default: the project's store)")
    parser.add_argument("--report", default=str(PROJECT_ROOT / cfg.paths.report_html), help="HTML report ('' skips)")
    parser.add_argument("--plots", default=str(PROJECT_ROOT / "dvc_plots" / "index.html"),
                        help="dvc plots show's page ('' skips)")
    parser.add_argument("--server", default=None, help="URL of a running MLflow server on that store (default: one)")
    parser.add_argument("--out", default=str(PROJECT_ROOT / "outputs" / "screenshots"), help="folder for the PNGs")
    args = parser.parse_args(argv)
    uri = args.store or tracking.tracking_uri(cfg)
    report_html, plots_html = (Path(p) if p else None for p in (args.report, args.plots))
    for path in (report_html, plots_html):
        if path is not None and not path.is_file():
            parser.error(f"{path} not found: make it first (dvc repro compare; dvc plots show), or pass '' to skip.")
    views = take(uri, cfg.tracking.experiment, report_html, plots_html, Path(args.out), args.server)
    print("\n".join(f"ok       {line}" for line in views.seen))
    print("\n".join(f"MISSING  {line}" for line in views.missing))
    return 1 if views.missing else 0


if __name__ == "__main__":
    sys.exit(main())
