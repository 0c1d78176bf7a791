"""Publishing: model and dataset folders to the Hugging Face Hub, and a ready-to-push Space.

- `cards`: model/dataset/Space cards (YAML front matter checked with huggingface_hub's card classes);
- `upload`: what a folder upload sends (the dry-run listing) and the upload itself (`HfApi.upload_folder`);
- `space`: `build_space`, the folder `cp2image space build` writes.
"""
