# cp2image demo app: CPU-only, non-root, offline on the bundled weights.
#   docker build -t cp2image-app .
#   docker run --rm -p 8501:8501 cp2image-app          # then open http://localhost:8501
# Optional: -e CP2IMAGE_MODEL=org/name -e HF_HUB_OFFLINE=0 to serve weights from the Hub.
# Public server: -e CP2IMAGE_HOSTED=1 [-e CP2IMAGE_ALLOWED_MODELS=org/name] (untested here: no Docker engine)
#   (writes only to a temp folder, allowlisted model/dataset choices; see docs/hosting.md).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# 1. CPU-only torch first (the default PyPI wheel pulls in CUDA libraries, ~2 GB).
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0

# 2. The rest of the runtime requirements (test-only tools and the editable install are left out;
#    torch==2.13.0 is already satisfied by 2.13.0+cpu).
COPY requirements.txt pyproject.toml README.md ./
RUN grep -v -E '^\s*(-e|pytest|hypothesis|playwright)' requirements.txt > /tmp/runtime-requirements.txt \
 && pip install -r /tmp/runtime-requirements.txt \
 && rm /tmp/runtime-requirements.txt

# 3. The package, the app and the bundled assets (dataset + weights + evaluation).
RUN useradd --create-home --uid 10001 app
COPY cp2image ./cp2image
COPY app ./app
COPY pages ./pages
COPY assets ./assets
COPY .streamlit ./.streamlit
RUN pip install --no-deps -e . && chown -R app:app /app

USER app
ENV HOME=/home/app \
    CP2IMAGE_ASSETS=/app/assets \
    CP2IMAGE_CACHE=/home/app/.cache/cp2image \
    HF_HUB_OFFLINE=1 \
    MPLCONFIGDIR=/home/app/.cache/matplotlib

# Unpack the bundled dataset and build matplotlib's font cache once, at build time, so the
# first visitor does not wait; also proves the bundled weights load with no network.
RUN python -c "import matplotlib.font_manager; \
from cp2image.assets import bundled_dataset_dir; from cp2image.data.dataset import open_dataset; \
from cp2image.models.hub import load_model; \
print(len(open_dataset(bundled_dataset_dir())), 'cells;', load_model(None).source)"

# Measure one bundled crop at build time: numba compiles the measure-back's kernels
# (cp2image/features/reconstruction.py) and writes them to its disk cache beside the package
# (cp2image/features/__pycache__, owned by this user), so the first perturbation visit loads
# them (~0.3 s) instead of compiling (tens of seconds on a loaded machine).
RUN python -c "from cp2image.assets import bundled_dataset_dir; from cp2image.data.dataset import open_dataset; \
from cp2image.features import measure; \
print(measure(open_dataset(bundled_dataset_dir()).images[:1]).shape[1], 'features measured on one crop')" \
 && ls cp2image/features/__pycache__/*.nbi

EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD python -c "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4).status == 200 else 1)"

CMD ["streamlit", "run", "app/Home.py", "--server.port=8501", "--server.address=0.0.0.0"]
