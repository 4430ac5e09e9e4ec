"""The report's HTML as a browser lays it out (seen in headless Chromium, the screenshot of
docs/guides/watching-runs.md): a section that shows all the runs in one part (the comparison)
is named by no run, and a table without a header (the summary's) draws no empty header row."""

from __future__ import annotations

from nncli.reports import page as html


def test_a_section_of_one_part_for_several_runs_names_no_run():
    runs = ["a/model.h5", "b/model.h5"]
    sections = [
        html.Section("comparison", "Runs compared", ["<p>both runs</p>"]),
        html.Section("summary", "Summary", ["<p>first</p>", "<p>second</p>"]),
    ]
    text = html.page("report", runs, sections)
    comparison, summary = text.split('<section id="summary">')
    assert "<h3>" not in comparison
    assert "grid-template-columns: repeat(1, " in comparison
    assert summary.count("<h3>") == 2
    assert "<h3>a/model.h5</h3><p>first</p>" in summary
    assert "<h3>b/model.h5</h3><p>second</p>" in summary


def test_one_run_has_no_run_heading():
    text = html.page("report", ["a/model.h5"], [html.Section("summary", "Summary", ["<p>x</p>"])])
    assert "<h3>" not in text


def test_a_table_without_a_header_has_no_header_row():
    rows = [["data", "csv: iris.csv"], ["epochs", "100"]]
    bare = html.table([], rows)
    assert "<thead>" not in bare and "<th>" not in bare
    assert bare.count("<tr>") == 2
    headed = html.table(["what", "value"], rows)
    assert headed.count("<tr>") == 3 and "<th>what</th>" in headed
