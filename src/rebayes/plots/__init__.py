"""Figures for the report: matplotlib, rendered headless (Agg)."""

from rebayes.plots.forest import SummaryRow, forest_plot
from rebayes.plots.influence import influence_plot

__all__ = ["SummaryRow", "forest_plot", "influence_plot"]
