"""cp2image.analysis — what the model is for: perturbation sweeps, MoA interpolation,
PCA dose trajectories, and figure panels with offline export. No Streamlit here.

Modules (import the one you need):
- `perturb`     sweep_feature: one feature up/down, images, measured back, Spearman ρ
- `interpolate` interpolate_to_moa: DMSO cell → MoA cell, 50 features a step, cosine
- `trajectory`  CompoundTrajectory: PCA of DMSO + a compound's doses, the red line, clicks → profiles;
                the doses nearest a click, the line's angle
- `render`      composite / single_channel: the one channel→colour mapping
- `panels`      Panel, image_strip, image_grid, chart panels
- `export`      to_png / to_svg / to_pdf / to_csv, atomic save
- `profiles`    read and validate a user's profile CSV against a model's features
- `domain`      a feature's valid range; a profile's features beyond a model's training range
- `space`       feature names, close-name suggestions, normalised feature space
"""
