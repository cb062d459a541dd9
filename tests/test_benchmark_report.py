"""``benchmarks/_report.py``: results files are only ever appended to, one section per run."""

from __future__ import annotations


def test_append_section_keeps_earlier_text_and_separates_sections(tmp_path, benchmark_script):
    report = benchmark_script("_report")
    out = tmp_path / "results.md"
    report.append_section(out, "# Run 1\n\n| a |\n")
    with out.open("a") as f:
        f.write("A reading added by hand, without a trailing blank line.")
    report.append_section(out, "## Run 2")
    with out.open("a") as f:
        f.write("Another reading.\n")
    report.append_section(out, "## Run 3\n\n\n")
    assert out.read_text() == (
        "# Run 1\n\n| a |\n\n"
        "A reading added by hand, without a trailing blank line.\n\n"
        "## Run 2\n\n"
        "Another reading.\n\n"
        "## Run 3\n\n"
    )
