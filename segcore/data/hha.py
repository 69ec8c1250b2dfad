"""HHA depth encoding (Gupta, Girshick, Arbelaez, Malik, ECCV 2014), as the reference MATLAB code.

Three uint8 channels per depth map: horizontal disparity, height above the (estimated) floor in cm,
and the angle between the surface normal and gravity plus 38 degrees. Every step works on whole
arrays (box filters, closed-form 3x3 solves, one weighted 3x3 moment per gravity iteration), so a
480x640 frame takes a few hundredths of a second instead of seconds.

Conventions kept from the reference, because they change pixels:
- pixel coordinates are 1-based (x = 1..W, y = 1..H) in the back-projection;
- normals come from a least-squares plane fit over a (2R+1)^2 window, accumulated with zero padding;
  missing pixels contribute nothing, and a window with no valid pixel gives a NaN normal;
- MATLAB's max(-1, NaN) is -1, so a NaN normal has angle 180 (channel value 218);
- uint8 conversion rounds half away from zero, saturates to [0, 255] and maps NaN to 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import uniform_filter1d

ANGLE_WINDOW = 3       # R of the 7x7 plane fit whose normals give the angle channel
GRAVITY_WINDOW = 10    # R of the 21x21 plane fit whose normals estimate gravity
GRAVITY_SCHEDULE = ((45.0, 5), (15.0, 5))  # (angle threshold in degrees, iterations)
FLOOR_GUESS_CM = 130.0  # assumed camera height when the lowest point is less than 90 cm below it
MIN_FLOOR_DROP_CM = 90.0
MIN_DEPTH_CM = 100.0   # disparity saturates below 1 m: 31000 / 100 = 310 -> 255
ANGLE_OFFSET = 38.0    # MATLAB code: angle + 128 - 90


@dataclass(frozen=True)
class Camera:
    """Pinhole intrinsics in pixels, for 1-based pixel coordinates (MATLAB convention)."""

    fx: float
    fy: float
    cx: float
    cy: float


# NYUDv2 RGB camera, to which the depth is registered (Gupta et al.'s values).
NYU_CAMERA = Camera(518.85790117450188, 519.46961112127485, 325.58244941119034, 253.73616633400465)
# The same camera for the 425 x 560 crops (rows 45..469, cols 41..600 of the 480 x 640 frame).
NYU_CROP_CAMERA = Camera(NYU_CAMERA.fx, NYU_CAMERA.fy, 285.58244941119034, 208.73616633400465)


def _cloud(depth_m: np.ndarray, camera: Camera) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Planar X, Y, Z in centimetres (1-based pixel grid); see `point_cloud`."""
    z = 100.0 * np.asarray(depth_m, dtype=np.float64)
    h, w = z.shape
    x = (np.arange(1, w + 1, dtype=np.float64)[None, :] - camera.cx) * z / camera.fx
    y = (np.arange(1, h + 1, dtype=np.float64)[:, None] - camera.cy) * z / camera.fy
    return x, y, z


def point_cloud(depth_m: np.ndarray, camera: Camera) -> np.ndarray:
    """(H, W) depth in metres -> (H, W, 3) points X, Y, Z in centimetres (1-based pixel grid)."""
    return np.stack(_cloud(depth_m, camera), axis=-1)


def _plane_fit_systems(camera: Camera, inv_z: np.ndarray, valid: np.ndarray, radius: int):
    """Window sums of f f^T (6 entries) and f / Z (3) with f = [X/Z, Y/Z, 1] = [gx(x), gy(y), 1].

    The box filter is separable and gx, gy depend on one coordinate each, so five 1-D passes along
    y (the slow, strided axis) serve all nine sums before nine passes along x (14 passes instead of
    18). Sums are window means, not totals: a common factor that cancels in the solve. Zero
    padding, as imfilter.
    """
    h, w = inv_z.shape
    size = 2 * radius + 1
    gx = ((np.arange(1, w + 1, dtype=np.float64) - camera.cx) / camera.fx)[None, :]
    gy = ((np.arange(1, h + 1, dtype=np.float64) - camera.cy) / camera.fy)[:, None]
    v = valid.astype(np.float64)
    vz = np.where(valid, inv_z, 0.0)

    def along_x(a):
        return uniform_filter1d(a, size, axis=1, mode="constant")

    def along_y(a):
        return uniform_filter1d(a, size, axis=0, mode="constant")

    p0, p1, p2 = along_y(v), along_y(v * gy), along_y(v * (gy * gy))
    q0, q1 = along_y(vz), along_y(vz * gy)
    a = (along_x((gx * gx) * p0), along_x(gx * p1), along_x(gx * p0), along_x(p2), along_x(p1), along_x(p0))
    b = (along_x(gx * q0), along_x(q1), along_x(q0))
    return a, b


def _normals(cloud, camera: Camera, missing: np.ndarray | None, radius: int) -> list[np.ndarray]:
    """Planar (n_x, n_y, n_z) unit normals of the planar cloud (X, Y, Z); see `normals`."""
    x, y, z = cloud
    valid = np.isfinite(z) & (z > 0)
    if missing is not None:
        valid &= ~np.asarray(missing, dtype=bool)
    with np.errstate(divide="ignore"):
        inv_z = 1.0 / z
    a, b = _plane_fit_systems(camera, inv_z, valid, radius)
    # a33 is the window's share of valid pixels (>= 1 / size^2 when any): an exact test for an empty
    # window, where the running sums of the filter may leave 1e-17 instead of MATLAB's exact 0.
    empty = a[5] < 0.5 / (2 * radius + 1) ** 2
    out = [np.empty_like(z) for _ in range(3)]
    # Row blocks keep the ~20 temporaries of the solve in cache: twice as fast as whole frames.
    for rows in _row_blocks(z.shape[0]):
        block = _solve_block([m[rows] for m in a], [m[rows] for m in b], (x[rows], y[rows], z[rows]),
                             empty[rows])
        for o, n in zip(out, block):
            o[rows] = n
    return out


def _row_blocks(height: int, rows: int = 32):
    return [slice(r, min(r + rows, height)) for r in range(0, height, rows)]


def _solve_block(a, b, cloud, empty) -> list[np.ndarray]:
    """Oriented unit normals from the window sums of one block of rows; NaN where ``empty``."""
    (a11, a12, a13, a22, a23, a33), (b1, b2, b3), (x, y, z) = a, b, cloud
    # adjugate of the symmetric matrix [[a11 a12 a13] [a12 a22 a23] [a13 a23 a33]]
    c11, c12, c13 = a22 * a33 - a23 * a23, a13 * a23 - a12 * a33, a12 * a23 - a13 * a22
    c22, c23, c33 = a11 * a33 - a13 * a13, a12 * a13 - a11 * a23, a11 * a22 - a12 * a12
    # adj b is the solution times det(A): its length is normalised away and its sign is reset by the
    # orientation rule, so det itself is never needed. The reference's two flips (N_z >= 0, then
    # N . P >= 0) compose to: the sign of N . P, or of N_z where N . P is exactly 0.
    n = [c11 * b1 + c12 * b2 + c13 * b3, c12 * b1 + c22 * b2 + c23 * b3, c13 * b1 + c23 * b2 + c33 * b3]
    facing = n[0] * x + n[1] * y + n[2] * z
    sign = np.where(facing > 0, 1.0, np.where(facing < 0, -1.0, np.where(n[2] < 0, -1.0, 1.0)))
    with np.errstate(divide="ignore", invalid="ignore"):  # a zero solution gives 0 * inf = NaN, as MATLAB
        scale = np.where(empty, np.nan, sign) / np.sqrt(n[0] * n[0] + n[1] * n[1] + n[2] * n[2])
        return [c * scale for c in n]


def normals(cloud: np.ndarray, camera: Camera, missing: np.ndarray | None, radius: int) -> np.ndarray:
    """Unit surface normals (H, W, 3) by a least-squares plane fit n . p = 1 over each window.

    With f = [X/Z, Y/Z, 1], the plane n solves (sum f f^T) n = sum f / Z over the (2r+1)^2 window;
    the 3x3 system is solved in closed form with its adjugate. Missing pixels contribute nothing.
    Orientation: N_z >= 0, then N . P >= 0. A window without valid pixels gives NaN.
    """
    return np.stack(_normals(np.moveaxis(cloud, -1, 0), camera, missing, radius), axis=-1)


def gravity(normal_map, schedule=GRAVITY_SCHEDULE) -> np.ndarray:
    """Gravity direction (3,) from normals ((H, W, 3), or the three planar components).

    Starting at y = [0, 1, 0], each iteration takes floor-like normals (|y . n| > cos t) and
    wall-like ones (|y . n| < sin t) and picks the y most parallel to the former and most
    perpendicular to the latter: the eigenvector of sum_W n n^T - sum_F n n^T with the smallest
    eigenvalue, sign-aligned with the previous y.
    """
    comps = [normal_map[..., k] for k in range(3)] if isinstance(normal_map, np.ndarray) else normal_map
    keep = ~np.isnan(comps[0])
    nn = np.stack([c[keep] for c in comps])  # (3, N)
    # The 6 distinct products n_i n_j, once: each iteration's sum_W n n^T - sum_F n n^T is then a
    # single (6, N) x (N,) product with weights +1 (wall), -1 (floor), 0 (neither).
    i, j = np.triu_indices(3)
    products = nn[i] * nn[j]  # (6, N)
    y = np.array([0.0, 1.0, 0.0])
    for threshold, iterations in schedule:
        cos_t, sin_t = np.cos(np.radians(threshold)), np.sin(np.radians(threshold))
        for _ in range(iterations):
            sim = np.abs(y @ nn)
            weight = (sim < sin_t).astype(np.float64)
            weight -= sim > cos_t
            a = np.empty((3, 3))
            a[i, j] = a[j, i] = products @ weight
            values, vectors = np.linalg.eigh(a)
            new = vectors[:, np.argmin(values)]
            y = new * (np.sign(y @ new) or 1.0)
    return y


def rotation_to(y: np.ndarray) -> np.ndarray:
    """Rodrigues rotation taking [0, 1, 0] to the unit vector y; identity below 0.1 degree."""
    y0 = np.array([0.0, 1.0, 0.0])
    angle = np.degrees(np.arccos(np.clip(y0 @ y, -1.0, 1.0)))
    if abs(angle) <= 0.1:
        return np.eye(3)
    axis = np.cross(y0, y)
    axis /= np.linalg.norm(axis)
    s = np.array([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]])
    phi = np.radians(angle)
    return np.eye(3) + np.sin(phi) * s + (1 - np.cos(phi)) * (s @ s)


def height_above_floor(cloud, y: np.ndarray) -> np.ndarray:
    """Height in cm above the lowest point of the planar cloud (X, Y, Z), or above a floor 130 cm
    below the camera when the lowest point is less than 90 cm below it (a view without floor)."""
    # Y after rotating gravity to vertical: the component along R e_y, which is y itself unless the
    # tilt is under 0.1 degree (then R = I). Checked against the MATLAB output to the last pixel.
    up = rotation_to(y)[:, 1]
    h = -(cloud[0] * up[0] + cloud[1] * up[1] + cloud[2] * up[2])
    lowest = np.nanmin(h)
    if lowest > -MIN_FLOOR_DROP_CM:
        lowest = -FLOOR_GUESS_CM
    return h - lowest


def to_uint8(values: np.ndarray) -> np.ndarray:
    """MATLAB uint8(): round half away from zero, saturate to [0, 255], NaN -> 0.

    Below zero everything saturates to 0 anyway, so floor(x + 0.5) is MATLAB's rounding here.
    """
    out = np.floor(np.asarray(values, dtype=np.float64) + 0.5)
    np.clip(out, 0, 255, out=out)
    out[np.isnan(out)] = 0
    return out.astype(np.uint8)


def hha(depth_m: np.ndarray, camera: Camera, missing: np.ndarray | None = None) -> np.ndarray:
    """(H, W) filled depth in metres -> (H, W, 3) uint8 HHA: disparity, height, angle.

    ``missing``: pixels whose raw depth is missing (raw == 0); they do not enter the plane fits.
    Depth must be finite and positive wherever it is not missing.
    """
    depth = np.asarray(depth_m, dtype=np.float64)
    if depth.ndim != 2:
        raise ValueError(f"depth must be a 2-D array (H, W), got shape {depth.shape}")
    bad = ~np.isfinite(depth) | (depth <= 0)
    if missing is not None:
        if np.shape(missing) != depth.shape:
            raise ValueError(f"missing mask has shape {np.shape(missing)}, depth {depth.shape}")
        bad &= ~np.asarray(missing, dtype=bool)
    if bad.any():
        raise ValueError(f"depth has {int(bad.sum())} NaN, infinite or non-positive pixels outside the "
                         "missing mask; HHA needs the filled depth (NYU 'depths', not 'rawDepths')")
    cloud = _cloud(depth, camera)
    n = _normals(cloud, camera, missing, ANGLE_WINDOW)
    y = gravity(_normals(cloud, camera, missing, GRAVITY_WINDOW))
    # np.clip keeps NaN, MATLAB's min/max do not: a NaN normal reads as cos = -1 (angle 180).
    cos = n[0] * y[0] + n[1] * y[1] + n[2] * y[2]
    cos[np.isnan(cos)] = -1.0
    angle = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
    disparity = 31000.0 / np.maximum(cloud[2], MIN_DEPTH_CM)
    height = height_above_floor(cloud, y)
    return np.stack([to_uint8(c) for c in (disparity, height, angle + ANGLE_OFFSET)], axis=-1)
