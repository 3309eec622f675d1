"""Pictures for people: a point cloud seen from above and behind the camera, labelled montages
and line plots. numpy + OpenCV only (no plotting library to install)."""
from __future__ import annotations

import cv2
import numpy as np

LABEL_HEIGHT = 22
FONT = cv2.FONT_HERSHEY_SIMPLEX
COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14), (148, 103, 189)]


def render_cloud(points: np.ndarray, colours: np.ndarray, width: int, height: int,
                 K: np.ndarray, height_above: float = 4.0, distance_behind: float = 6.0,
                 pitch_deg: float = 22.0) -> np.ndarray:
    """Points (N, 3) in a camera's optical frame (z forward, y down) with colours (N, 3) uint8,
    drawn as seen from a virtual camera with intrinsics K, `height_above` metres above and
    `distance_behind` metres behind the real one, pitched down by `pitch_deg`: the view
    RViz gives by default. Nearest point wins each pixel; no point = dark grey."""
    keep = np.isfinite(points).all(1)
    points, colours = points[keep], colours[keep]
    pitch = np.radians(pitch_deg)
    # Rotation about x by the pitch (looking down), applied after moving up and back.
    rotation = np.array([[1, 0, 0],
                         [0, np.cos(pitch), -np.sin(pitch)],
                         [0, np.sin(pitch), np.cos(pitch)]])
    viewed = (points - np.array([0.0, -height_above, -distance_behind])) @ rotation.T
    z = viewed[:, 2]
    front = z > 0.1
    viewed, colours, z = viewed[front], colours[front], z[front]
    u = np.round(K[0, 0] * viewed[:, 0] / z + K[0, 2]).astype(np.int64)
    v = np.round(K[1, 1] * viewed[:, 1] / z + K[1, 2]).astype(np.int64)
    inside = (u >= 0) & (u < width - 1) & (v >= 0) & (v < height - 1)
    u, v, z, colours = u[inside], v[inside], z[inside], colours[inside]
    image = np.full((height, width, 3), 40, np.uint8)
    # Far to near, each point as a 2x2 splat: later (nearer) writes win.
    order = np.argsort(-z)
    u, v, colours = u[order], v[order], colours[order]
    for du in (0, 1):
        for dv in (0, 1):
            image[v + dv, u + du] = colours
    return image


def labelled(image: np.ndarray, label: str) -> np.ndarray:
    """The image with a black strip above it carrying `label`."""
    strip = np.zeros((LABEL_HEIGHT, image.shape[1], 3), np.uint8)
    cv2.putText(strip, label, (6, LABEL_HEIGHT - 7), FONT, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return np.vstack([strip, image])


def montage(panels: list[tuple[str, np.ndarray]]) -> np.ndarray:
    """Labelled RGB panels of one width, stacked top to bottom."""
    widths = {image.shape[1] for _, image in panels}
    if len(widths) != 1:
        raise ValueError(f'panels differ in width: {sorted(widths)}')
    return np.vstack([labelled(image, label) for label, image in panels])


def line_plot(series: dict[str, tuple[np.ndarray, np.ndarray]], title: str, x_label: str,
              y_label: str, width: int = 720, height: int = 360,
              log_y: bool = False) -> np.ndarray:
    """Curves {name: (x, y)} on shared axes -> RGB image, with ticks, labels and a legend."""
    left, right, top, bottom = 70, 20, 44, 46
    image = np.full((height, width, 3), 255, np.uint8)
    xs = np.concatenate([np.asarray(x, float) for x, _ in series.values()])
    ys = np.concatenate([np.asarray(y, float) for _, y in series.values()])
    transform = np.log10 if log_y else (lambda values: values)
    x_range = (xs.min(), xs.max() if xs.max() > xs.min() else xs.min() + 1)
    y_low, y_high = transform(ys.min()), transform(ys.max())
    if y_high <= y_low:
        y_high = y_low + 1
    y_range = (y_low - 0.05 * (y_high - y_low), y_high + 0.05 * (y_high - y_low))

    def to_pixels(x, y):
        px = left + (np.asarray(x, float) - x_range[0]) / (x_range[1] - x_range[0]) \
            * (width - left - right)
        py = height - bottom - (transform(np.asarray(y, float)) - y_range[0]) \
            / (y_range[1] - y_range[0]) * (height - top - bottom)
        return np.stack([px, py], -1).round().astype(np.int32)

    grey, black = (200, 200, 200), (0, 0, 0)
    for fraction in np.linspace(0, 1, 5):
        y_value = y_range[0] + fraction * (y_range[1] - y_range[0])
        label = 10 ** y_value if log_y else y_value
        y_pixel = int(round(height - bottom - fraction * (height - top - bottom)))
        cv2.line(image, (left, y_pixel), (width - right, y_pixel), grey, 1)
        cv2.putText(image, f'{label:.3g}', (4, y_pixel + 4), FONT, 0.4, black, 1, cv2.LINE_AA)
        x_value = x_range[0] + fraction * (x_range[1] - x_range[0])
        x_pixel = int(round(left + fraction * (width - left - right)))
        cv2.line(image, (x_pixel, height - bottom), (x_pixel, height - bottom + 4), black, 1)
        cv2.putText(image, f'{x_value:.0f}', (x_pixel - 12, height - bottom + 18), FONT, 0.4,
                    black, 1, cv2.LINE_AA)
    cv2.rectangle(image, (left, top), (width - right, height - bottom), black, 1)
    for index, (x, y) in enumerate(series.values()):
        cv2.polylines(image, [to_pixels(x, y)], False, COLOURS[index % len(COLOURS)], 2,
                      cv2.LINE_AA)
    # The legend on a white box drawn over the curves, so that both stay readable.
    cv2.rectangle(image, (width - right - 196, top + 4),
                  (width - right - 4, top + 10 + 18 * len(series)), (255, 255, 255), -1)
    for index, name in enumerate(series):
        colour = COLOURS[index % len(COLOURS)]
        cv2.line(image, (width - right - 190, top + 16 + 18 * index),
                 (width - right - 165, top + 16 + 18 * index), colour, 2)
        cv2.putText(image, name, (width - right - 160, top + 20 + 18 * index), FONT, 0.45,
                    black, 1, cv2.LINE_AA)
    cv2.putText(image, title, (left, 18), FONT, 0.55, black, 1, cv2.LINE_AA)
    cv2.putText(image, x_label, ((width + left) // 2 - 30, height - 10), FONT, 0.45, black, 1,
                cv2.LINE_AA)
    cv2.putText(image, y_label, (4, top - 8), FONT, 0.45, black, 1, cv2.LINE_AA)
    return image


def write_png(path, rgb: np.ndarray) -> None:
    """RGB array -> PNG file (atomically)."""
    from hybrid_depth_core.atomic import new_file

    ok, encoded = cv2.imencode('.png', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f'could not encode {path} as PNG')
    with new_file(path) as file:
        file.write(encoded.tobytes())
