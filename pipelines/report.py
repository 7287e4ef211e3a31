"""Report rule: one Markdown page with the paper's aggregates, every figure and the log problems.
(`snakemake --report results/report.html` builds the HTML version with captions.)"""
import argparse
from pathlib import Path


def write_report(paper: Path, aggregates: Path, figures: Path, problems: Path, out: Path):
    lines = ["# DreamerV3 benchmark report", "", paper.read_text(), ""]
    lines += ["# Figures", ""]
    for figure in sorted(figures.glob("*.png")):
        lines += [f"## {figure.stem.replace('_', ' ')}", "", f"![{figure.stem}]({figure.relative_to(out.parent)})", ""]
        numbers = figure.with_suffix(".md")  # a figure's numbers, where the plots rule writes them
        if numbers.exists():
            lines += [numbers.read_text(), ""]
    skipped = problems.read_text().splitlines()
    lines += ["# Log problems", "", f"{len(skipped)} malformed log lines or runs were skipped.", ""]
    lines += [f"    {line}" for line in skipped[:50]]
    lines += ["", f"All aggregates: [{aggregates.name}]({aggregates.relative_to(out.parent)})", ""]
    out.write_text("\n".join(lines))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    for name in ("paper", "aggregates", "figures", "problems", "out"):
        parser.add_argument(f"--{name}", required=True, type=Path)
    args = parser.parse_args()
    write_report(args.paper, args.aggregates, args.figures, args.problems, args.out)


if __name__ == "__main__":
    main()
