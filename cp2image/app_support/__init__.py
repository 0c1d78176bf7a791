"""Presentation helpers of the Streamlit app that import no streamlit (so they are unit-tested without a server).

The one Plotly style (`plot_theme`) and chart builders (`charts`, and `selection_charts`
for the Altair histogram whose brush selects features), crop captions from a dataset's
provenance (`provenance`), reading a PCA chart click and its URL form (`pca_click`),
plain-words warnings (`input_range`, `warning_capture`), the allowlist of models a
visitor may ask for (`model_spec`). Computation lives beside the pipeline stage that owns
it (the saved generator evaluated in NumPy for Home's example, so a fresh server draws Home without
importing torch: `cp2image.models.numpy_generator`): panels, exports, upload checks, Home's example cell, the PCA geometry
(`analysis.trajectory`) and a profile's features beyond the training range
(`analysis.domain`) in `cp2image.analysis`; saved evaluations in
`cp2image.evaluation.files`, the model card in `cp2image.models.card`.
"""
