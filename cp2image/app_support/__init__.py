"""Presentation helpers of the Streamlit app that import no streamlit (so they are unit-tested without a server).

The one Plotly style (`plot_theme`) and chart builders (`charts`, and `selection_charts`
for the Altair histogram whose brush selects features), crop captions from a dataset's
provenance (`provenance`), mapping a chart click to a profile (`pca_click`), plain-words
warnings (`input_range`, `warning_capture`), the allowlist of models a visitor may ask
for (`model_spec`). Computation lives beside the pipeline stage that owns it: panels,
exports, upload checks and Home's example cell in `cp2image.analysis`,
saved evaluations in `cp2image.evaluation.files`, the model card in `cp2image.models.card`.
"""
