"""cp2image.analysis — what the model is for: perturbation sweeps, MoA interpolation,
PCA dose trajectories, and figure panels with offline export. No Streamlit here.

Modules (import the one you need):
- `perturb`     sweep_feature: one feature up/down, images, measured back, Spearman ρ
- `interpolate` interpolate_to_moa: DMSO cell → MoA cell, 50 features a step, cosine
- `trajectory`  CompoundTrajectory: PCA of DMSO + a compound's doses, the red line, clicks → profiles
- `render`      composite / single_channel: the one channel→colour mapping
- `panels`      Panel, image_strip, image_grid, chart panels
- `export`      to_png / to_svg / to_pdf / to_csv, atomic save
- `profiles`    read and validate a user's profile CSV against a model's features
- `space`       feature names, close-name suggestions, normalised feature space
"""
