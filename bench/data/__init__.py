"""Datasets, their preparation and the two data pipelines.

- ``python -m bench.data prepare <name> [--from PATH] [--allow-incomplete]`` (``__main__``):
  archive/folder/download -> verified cached arrays (or an ImageNet file manifest) under
  ``<data_root>/<provenance tag>`` (``prepare``, ``sources``, ``cache``, ``catalog``).
- ``dataset.loader=fast``: ``loader.TensorLoader``, the split on the device with batched
  augmentation (``augment``); ``dataset.loader=dataloader``: ``workers.WorkerLoader``, torchvision
  transforms (``transforms``) in worker processes. ``build.build_loaders`` picks one for a run.
- Configs: ``conf/dataset/<name>.yaml`` with the groups ``dataset/norm`` (normalisation per paper)
  and ``dataset/augment`` (augmentation recipe per paper).
"""
