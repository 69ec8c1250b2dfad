"""Published numbers the reports print beside ours (percent unless a column's unit says otherwise).

Sources: Long, Shelhamer, Darrell, "Fully Convolutional Networks for Semantic Segmentation",
CVPR 2015, Tables 1 to 5; Ronneberger, Fischer, Brox, "U-Net", MICCAI 2015, Table 1 (ISBI 2012).
Rows of other methods are reference rows: printed as published, never retrained. ``None`` = not
reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class PaperRow:
    label: str
    values: dict[str, float | None]
    experiment: str | None = None  # our experiment that reproduces this row; None = reference row
    note: str = ""
    lead: tuple[str, ...] = ()  # cells of the table's ``lead`` columns (ISBI: the rank), "" = blank


@dataclass(frozen=True)
class PaperTable:
    key: str
    title: str
    columns: dict[str, str]      # metric key -> column heading
    # metric key -> unit when not percent: "ms", "count" (an integer), "M" (millions) or "frac" (a fraction)
    units: dict[str, str] = field(default_factory=dict)
    rows: tuple[PaperRow, ...] = ()
    notes: tuple[str, ...] = ()
    # Published columns that describe a row rather than measure it (ISBI: the challenge rank),
    # printed once before the model column: ours cannot be ranked, so there is no ours / diff.
    lead: tuple[str, ...] = ()
    # metric key -> decimals the paper prints, so a published 0.0010 does not read as 0.001
    digits: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # A typo in a hand-typed table should stop the report, not shift its cells.
        for row in self.rows:
            if row.lead and len(row.lead) != len(self.lead):
                raise ValueError(f"{self.key}: row {row.label!r} has {len(row.lead)} lead cells "
                                 f"{row.lead!r}; the table's lead columns are {self.lead!r}")
            unknown = sorted(set(row.values) - set(self.columns))
            if unknown:
                raise ValueError(f"{self.key}: row {row.label!r} has values for unknown columns {unknown}; "
                                 f"allowed: {', '.join(self.columns)}")
        for name, keys in (("units", self.units), ("digits", self.digits)):
            unknown = sorted(set(keys) - set(self.columns))
            if unknown:
                raise ValueError(f"{self.key}: {name} names unknown columns {unknown}; "
                                 f"allowed: {', '.join(self.columns)}")


TABLE1 = PaperTable(
    key="table1",
    title="Table 1: classifier nets made fully convolutional, PASCAL VOC2011 val",
    columns={"mean_iu": "mean IU", "forward_ms": "forward time"},
    units={"forward_ms": "ms"},
    rows=(
        PaperRow("FCN-AlexNet", {"mean_iu": 39.8, "forward_ms": 50.0}, "t1-alexnet"),
        PaperRow("FCN-VGG16", {"mean_iu": 56.0, "forward_ms": 210.0}, "t1-vgg16"),
        PaperRow("FCN-GoogLeNet", {"mean_iu": 42.5, "forward_ms": 59.0}, "t1-googlenet"),
    ),
    notes=(
        "Paper: trained on VOC2011 train without SBD at a fixed learning rate (AlexNet 1e-3, VGG16 1e-4, "
        "GoogLeNet 5e-5), scored on VOC2011 val; forward time of one 500x500 input on a Tesla K40c, "
        "mean of 20 trials. Only GoogLeNet's final loss layer is used and its average pooling dropped.",
    ),
)

# Table 1's architecture columns: the same rows, printed as a second table of the same page.
TABLE1_ARCH = PaperTable(
    key="table1",
    title="Table 1, architecture of the full-size nets",
    columns={"layers": "conv. layers", "params": "parameters", "rf": "rf size", "stride": "max stride"},
    units={"layers": "count", "params": "M", "rf": "count", "stride": "count"},
    rows=(
        PaperRow("FCN-AlexNet", {"layers": 8, "params": 57e6, "rf": 355, "stride": 32}, "t1-alexnet"),
        PaperRow("FCN-VGG16", {"layers": 16, "params": 134e6, "rf": 404, "stride": 32}, "t1-vgg16"),
        PaperRow("FCN-GoogLeNet", {"layers": 22, "params": 6e6, "rf": 907, "stride": 32}, "t1-googlenet"),
    ),
)

TABLE2 = PaperTable(
    key="table2",
    title="Table 2: skip architectures, FCN-VGG16 on a subset of PASCAL VOC2011 val (seg11valid)",
    columns={"pixel_acc": "pixel acc.", "mean_acc": "mean acc.", "mean_iu": "mean IU", "fw_iu": "f.w. IU"},
    rows=(
        PaperRow("FCN-32s-fixed", {"pixel_acc": 83.0, "mean_acc": 59.7, "mean_iu": 45.4, "fw_iu": 72.0},
                 "fcn32s-fixed"),
        PaperRow("FCN-32s", {"pixel_acc": 89.1, "mean_acc": 73.3, "mean_iu": 59.4, "fw_iu": 81.4}, "fcn32s"),
        PaperRow("FCN-16s", {"pixel_acc": 90.0, "mean_acc": 75.7, "mean_iu": 62.4, "fw_iu": 83.0}, "fcn16s"),
        PaperRow("FCN-8s", {"pixel_acc": 90.3, "mean_acc": 75.9, "mean_iu": 62.7, "fw_iu": 83.2}, "fcn8s"),
    ),
    notes=(
        "Paper: trained on SBD train (8,498 images), scored on seg11valid (736 images of VOC2011 val "
        "that are not in SBD train). FCN-32s-fixed fine-tunes only the scoring layer.",
    ),
)

TABLE3 = PaperTable(
    key="table3",
    title="Table 3: FCN-8s on the PASCAL VOC test sets",
    columns={"voc2011_test": "mean IU VOC2011 test", "voc2012_test": "mean IU VOC2012 test",
             "inference_ms": "inference time"},
    units={"inference_ms": "ms"},
    rows=(
        PaperRow("R-CNN", {"voc2011_test": 47.9, "voc2012_test": None, "inference_ms": None}),
        PaperRow("SDS", {"voc2011_test": 52.6, "voc2012_test": 51.6, "inference_ms": 50_000.0},
                 note="~50 s"),
        PaperRow("FCN-8s", {"voc2011_test": 62.7, "voc2012_test": 62.2, "inference_ms": 175.0}, "fcn8s",
                 note="~175 ms"),
    ),
    notes=(
        "Paper: test labels are held by the PASCAL evaluation server; inference time of one "
        "500x500 image on a Tesla K40c.",
    ),
)

TABLE4 = PaperTable(
    key="table4",
    title="Table 4: NYUDv2, RGB and depth (40 classes)",
    columns={"pixel_acc": "pixel acc.", "mean_acc": "mean acc.", "mean_iu": "mean IU", "fw_iu": "f.w. IU"},
    rows=(
        PaperRow("Gupta et al.", {"pixel_acc": 60.3, "mean_acc": None, "mean_iu": 28.6, "fw_iu": 47.0}),
        PaperRow("FCN-32s RGB", {"pixel_acc": 60.0, "mean_acc": 42.2, "mean_iu": 29.2, "fw_iu": 43.9}, "nyud-rgb"),
        PaperRow("FCN-32s RGBD", {"pixel_acc": 61.5, "mean_acc": 42.4, "mean_iu": 30.5, "fw_iu": 45.5}, "nyud-rgbd"),
        PaperRow("FCN-32s HHA", {"pixel_acc": 57.1, "mean_acc": 35.2, "mean_iu": 24.2, "fw_iu": 40.4}, "nyud-hha"),
        PaperRow("FCN-32s RGB-HHA", {"pixel_acc": 64.3, "mean_acc": 44.9, "mean_iu": 32.8, "fw_iu": 48.0},
                 "nyud-rgbhha"),
        PaperRow("FCN-16s RGB-HHA", {"pixel_acc": 65.4, "mean_acc": 46.1, "mean_iu": 34.0, "fw_iu": 49.5},
                 "nyud-rgbhha16s"),
    ),
    notes=(
        "Paper: trained on the 795 NYUDv2 training images, scored on the 654 test images. RGBD: depth as a 4th "
        "input channel (early fusion). HHA: depth encoded as horizontal disparity, height above ground and the "
        "angle of the surface normal with gravity. RGB-HHA: an RGB and an HHA net whose predictions are summed "
        "(late fusion).",
    ),
)

TABLE5 = PaperTable(
    key="table5",
    title="Table 5: SIFT Flow (33 semantic classes, 3 geometric classes)",
    columns={"pixel_acc": "pixel acc.", "mean_acc": "mean acc.", "mean_iu": "mean IU", "fw_iu": "f.w. IU",
             "geo_acc": "geom. acc."},
    rows=(
        PaperRow("Liu et al.", {"pixel_acc": 76.7, "mean_acc": None, "mean_iu": None, "fw_iu": None, "geo_acc": None}),
        PaperRow("Tighe et al. [33]", {"pixel_acc": None, "mean_acc": None, "mean_iu": None, "fw_iu": None,
                                       "geo_acc": 90.8}),
        PaperRow("Tighe et al. [34] 1", {"pixel_acc": 75.6, "mean_acc": 41.1, "mean_iu": None, "fw_iu": None,
                                         "geo_acc": None}),
        PaperRow("Tighe et al. [34] 2", {"pixel_acc": 78.6, "mean_acc": 39.2, "mean_iu": None, "fw_iu": None,
                                         "geo_acc": None}),
        PaperRow("Farabet et al. 1", {"pixel_acc": 72.3, "mean_acc": 50.8, "mean_iu": None, "fw_iu": None,
                                      "geo_acc": None}),
        PaperRow("Farabet et al. 2", {"pixel_acc": 78.5, "mean_acc": 29.6, "mean_iu": None, "fw_iu": None,
                                      "geo_acc": None}),
        PaperRow("Pinheiro et al.", {"pixel_acc": 77.7, "mean_acc": 29.8, "mean_iu": None, "fw_iu": None,
                                     "geo_acc": None}),
        PaperRow("FCN-16s", {"pixel_acc": 85.2, "mean_acc": 51.7, "mean_iu": 39.5, "fw_iu": 76.1, "geo_acc": 94.3},
                 "sift-fcn16s"),
    ),
    notes=(
        "Paper: one two-headed FCN-16s predicts both label sets; trained on 2,488 images (2,486 annotated), "
        "scored on the 200 test images. Geometric accuracy is the pixel accuracy of the 3-class head "
        "(sky, horizontal, vertical). Classes absent from the test ground truth (cow, desert, moon) are left out "
        "of the means.",
    ),
)

ISBI_ERRORS = ("warping_error", "rand_error", "pixel_error")

TABLE_UNET = PaperTable(
    key="unet",
    title="U-Net Table 1: ISBI 2012 EM segmentation challenge (ranking of 6 March 2015, by warping error)",
    columns={"warping_error": "warping error", "rand_error": "Rand error", "pixel_error": "pixel error"},
    units=dict.fromkeys(ISBI_ERRORS, "frac"),  # the challenge's errors are fractions in [0, 1], not percent
    lead=("rank (paper)",),
    digits={"warping_error": 6, "rand_error": 4, "pixel_error": 4},
    rows=(
        PaperRow("human values", {"warping_error": 0.000005, "rand_error": 0.0021, "pixel_error": 0.0010},
                 lead=("",)),
        PaperRow("u-net", {"warping_error": 0.000353, "rand_error": 0.0382, "pixel_error": 0.0611}, "unet-isbi",
                 lead=("1",)),
        PaperRow("DIVE-SCI", {"warping_error": 0.000355, "rand_error": 0.0305, "pixel_error": 0.0584},
                 lead=("2",)),
        PaperRow("IDSIA", {"warping_error": 0.000420, "rand_error": 0.0504, "pixel_error": 0.0613},
                 lead=("3",)),
        PaperRow("DIVE", {"warping_error": 0.000430, "rand_error": 0.0545, "pixel_error": 0.0582},
                 lead=("4",)),
        PaperRow("IDSIA-SCI", {"warping_error": 0.000653, "rand_error": 0.0189, "pixel_error": 0.1027},
                 lead=("10",)),
    ),
    notes=(
        "Paper: scored by the challenge organisers on the 30 test slices (labels secret), warping, Rand and "
        "pixel error each at its best of 10 thresholds; the published u-net averages 7 rotated inputs at test "
        "time.",
        "The paper's table lists the human values and the entries ranked 1 to 4 and 10 of the challenge's "
        "ranking (by warping error); ranks 5 to 9 are not printed there. Lower is better in every column.",
    ),
)

TABLES = {t.key: t for t in (TABLE1, TABLE2, TABLE3, TABLE4, TABLE5, TABLE_UNET)}
