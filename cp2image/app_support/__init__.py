"""Computation behind the Streamlit app that belongs to no pipeline stage.

Validation of what users type or upload, the one Plotly style, chart builders,
mapping a chart click to a profile, and packing images for download. Pages in
`pages/` stay thin views over these and over `cp2image.analysis` /
`cp2image.evaluation`. Nothing here imports streamlit, so all of it is unit-tested
without a server.
"""
