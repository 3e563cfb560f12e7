"""Rendering: rich terminal output (and, through rich, notebook HTML) for numfmt's results.

Each module registers a renderer per result class of one layer (see ``numfmt._display``):
``terminal`` for the formats layer, ``quant`` for the quantization layer. They load on a
result's first view, so importing numfmt loads neither rich nor these modules.
"""
