"""Data: everything between a published archive and a batch of tensors, for four data sets.

- download.py: fetch and checksum the published archives, extract them safely;
- readers: voc.py (+ voc_appearance.py), nyud.py, siftflow.py, isbi.py (the on-disk layouts,
  splits and the prepared folders), and the torch Datasets nyud_dataset.py and isbi_dataset.py;
- twins: twin_voc.py, twin_nyud.py, twin_siftflow.py, twin_isbi.py, synthetic data in the real
  on-disk layouts, for the smoke profile and the tests;
- HHA: hha.py (the depth encoding) and hha_encode.py (every frame, in parallel);
- U-Net's augmentation (augment.py) and loss weight maps (weightmap.py);
- preprocess.py: input normalisation (Preprocess) and its fit;
- specs.py: one DataSpec per data set in the registry DATASETS (heads, class names, channels,
  inputs, the Dataset of a split, the report's description), so no other room branches on a data
  set's name.

It may import segcore.core and segcore.config only (plus this room), never models, eval, train, report or
pipeline.
"""
