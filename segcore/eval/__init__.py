"""eval/: scoring a trained net: the confusion-matrix metrics (metrics.py), whole-image prediction and the VOC
submission archive (predict.py), overlap-tile inference (tiling.py), the ISBI 2012 scores (isbi_scores.py) and
the U-Net's ISBI evaluation (isbi.py). Imports core, config, data and models.
"""
