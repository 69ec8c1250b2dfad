"""HHA encoding: the MATLAB golden frame, and geometry that can be checked by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from segcore.data import hha as H

GOLDEN = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "nyud-hha"
CAMERA = H.Camera(fx=200.0, fy=200.0, cx=80.5, cy=60.5)  # a 120 x 160 frame


def _read_png(path: Path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path))


@pytest.mark.skipif(not GOLDEN.exists(), reason="../shared/testdata/nyud-hha is not here")
def test_matches_the_matlab_code_on_the_golden_frame():
    depth = _read_png(GOLDEN / "0.png").astype(np.float64) / 10_000  # uint16 metres x 10000
    reference = _read_png(GOLDEN / "matlab_hha.png")
    ours = H.hha(depth, H.NYU_CAMERA)  # the reference was made without a missing mask
    diff = np.abs(ours.astype(int) - reference.astype(int))
    assert (diff == 0).mean() >= 0.999 and diff.max() <= 1
    # With the raw depth's holes as the missing mask, only normals near holes change.
    raw = _read_png(GOLDEN / "0_raw.png")
    masked = H.hha(depth, H.NYU_CAMERA, missing=raw == 0)
    assert np.array_equal(masked[..., 0], ours[..., 0])  # disparity does not use normals


def room(pitch_deg: float = 0.0, camera_height_cm: float = 130.0, wall_cm: float = 800.0,
         floor: bool = True, ceiling_cm: float | None = None, shape=(120, 160)) -> np.ndarray:
    """Ray-cast depth (metres) of a back wall, a floor camera_height_cm below the camera and
    optionally a ceiling ceiling_cm above it, seen by CAMERA pitched down by pitch_deg."""
    h, w = shape
    u, v = np.meshgrid(np.arange(1, w + 1), np.arange(1, h + 1))
    rays = np.stack([(u - CAMERA.cx) / CAMERA.fx, (v - CAMERA.cy) / CAMERA.fy, np.ones(u.shape)], -1)
    t = np.radians(pitch_deg)
    rot = np.array([[1, 0, 0], [0, np.cos(t), np.sin(t)], [0, -np.sin(t), np.cos(t)]])  # camera -> world
    world = rays @ rot.T  # y down, z forward in the world
    with np.errstate(divide="ignore"):
        hit = np.where(world[..., 2] > 0, wall_cm / world[..., 2], np.inf)
        if floor:
            hit = np.minimum(hit, np.where(world[..., 1] > 0, camera_height_cm / world[..., 1], np.inf))
        if ceiling_cm is not None:
            hit = np.minimum(hit, np.where(world[..., 1] < 0, -ceiling_cm / world[..., 1], np.inf))
    return hit / 100.0  # ray z component is 1, so the parameter is the depth Z


def _interior(mask: np.ndarray, margin: int = 4) -> np.ndarray:
    """Pixels whose whole (2 margin + 1)^2 window lies inside `mask`."""
    from scipy.ndimage import binary_erosion

    return binary_erosion(mask, np.ones((2 * margin + 1,) * 2), border_value=0)


def test_floor_is_38_and_height_0_wall_is_128():
    depth = room()
    encoded = H.hha(depth, CAMERA).astype(int)
    rows = np.arange(1, 121)[:, None] * np.ones((1, 160))
    horizon = CAMERA.cy + CAMERA.fy * 130 / 800  # the row where the floor meets the wall
    floor, wall = _interior(rows > horizon + 1), _interior(rows < horizon - 1)
    assert floor.sum() > 1000 and wall.sum() > 5000
    assert np.abs(encoded[..., 2][floor] - 38).max() <= 1
    assert np.abs(encoded[..., 2][wall] - 128).max() <= 1
    # Height 0 on the floor, up to the small tilt the estimate leaves (0.3 degree: 4 cm at 8 m).
    assert np.median(encoded[..., 1][floor]) <= 1 and encoded[..., 1][floor].max() <= 4
    # disparity 31000 / Z (cm): the wall at 8 m -> 38.75 -> 39
    assert (encoded[..., 0][wall] == 39).all()


@pytest.mark.parametrize("pitch", [10.0, 20.0])
def test_a_pitched_camera_still_finds_gravity(pitch):
    depth = room(pitch)
    cloud = H.point_cloud(depth, CAMERA)
    y = H.gravity(H.normals(cloud, CAMERA, None, H.GRAVITY_WINDOW))
    t = np.radians(pitch)
    truth = np.array([0.0, np.cos(t), np.sin(t)])  # world down, seen from the camera pitched down
    assert np.degrees(np.arccos(np.clip(y @ truth, -1, 1))) < 0.5
    floor = _interior(depth < np.median(depth) * 0.9)  # near pixels are floor here
    assert np.abs(H.hha(depth, CAMERA)[..., 2][floor].astype(int) - 38).max() <= 1


def test_no_floor_in_view_assumes_one_130_cm_below():
    # No floor: a wall 2 m ahead (its lowest point 59.5 / 200 x 2 m below) under a ceiling that
    # fixes gravity (with walls alone any horizontal direction would do).
    depth = room(floor=False, wall_cm=200.0, ceiling_cm=40.0)
    encoded = H.hha(depth, CAMERA)
    cloud = H.point_cloud(depth, CAMERA)
    lowest_below_camera = cloud[..., 1].max()
    assert lowest_below_camera < 90  # so the reference's rule applies
    # height = 130 - Y at the bottom row of the wall
    assert abs(int(encoded[-1, 80, 1]) - (130 - cloud[-1, 80, 1])) <= 2  # up to the gravity estimate's tilt
    assert abs(int(encoded[2, 80, 2]) - 218) <= 1  # the ceiling faces down: 180 degrees from up


def test_missing_pixels_leave_the_fit_and_an_empty_window_reads_180_degrees():
    depth = room()
    missing = np.zeros(depth.shape, bool)
    missing[10:40, 20:60] = True  # a hole in the wall bigger than the 7x7 window
    encoded = H.hha(depth, CAMERA, missing=missing).astype(int)
    assert encoded[25, 40, 2] == 218  # NaN normal -> MATLAB's max(-1, NaN) = -1 -> 180 + 38
    near_hole = encoded[10:40, 60:64, 2]  # windows partly in the hole still fit the wall
    assert np.abs(near_hole - 128).max() <= 1


def test_matlab_uint8_rounding_and_saturation():
    values = np.array([0.5, 1.5, 2.5, 254.5, 255.4, 300.0, -0.5, -3.0, np.nan])
    assert H.to_uint8(values).tolist() == [1, 2, 3, 255, 255, 255, 0, 0, 0]


def test_bad_depth_is_refused_with_the_reason():
    depth = room()
    depth[3, 4] = np.nan
    with pytest.raises(ValueError, match="1 NaN, infinite or non-positive pixels outside the missing mask"):
        H.hha(depth, CAMERA)
    missing = np.zeros(depth.shape, bool)
    missing[3, 4] = True
    H.hha(depth, CAMERA, missing=missing)  # a hole the mask covers is fine
    with pytest.raises(ValueError, match="2-D array"):
        H.hha(depth[None], CAMERA)
