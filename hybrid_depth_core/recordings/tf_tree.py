"""A TF tree as tf2 keeps it, for whole recordings at once: each child frame has one parent;
static transforms hold at all times, dynamic ones are interpolated between their stamps
(linear translation, slerp rotation) and never extrapolated. Pure numpy, no ROS."""
from __future__ import annotations

import numpy as np

# A stamp between two transforms further apart than this has no transform (tf2 would
# interpolate across any gap; across a long one a robot's turn or stop is lost).
MAX_INTERPOLATION_GAP_NS = 200_000_000


class BadTransform(ValueError):
    """A transform or tree that cannot be used; the message says why."""


def quaternion_matrix(q: np.ndarray) -> np.ndarray:
    """(..., 4) quaternions (x, y, z, w) of any non-zero length -> (..., 3, 3) rotations."""
    q = np.asarray(q, np.float64)
    norm = np.linalg.norm(q, axis=-1, keepdims=True)
    if not np.isfinite(q).all() or (norm < 1e-9).any():
        raise BadTransform('a quaternion is not finite or has zero length')
    x, y, z, w = np.moveaxis(q / norm, -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
    ], -2)


def slerp(q0: np.ndarray, q1: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Spherical linear interpolation of unit quaternions (..., 4) by alpha (...,) in [0, 1],
    along the shorter arc."""
    dot = np.sum(q0 * q1, axis=-1)
    q1 = np.where((dot < 0)[..., None], -q1, q1)
    dot = np.clip(np.abs(dot), -1.0, 1.0)
    angle = np.arccos(dot)
    sine = np.sin(angle)
    close = sine < 1e-9  # (nearly) the same rotation: linear, renormalised below
    safe = np.where(close, 1.0, sine)
    w0 = np.where(close, 1 - alpha, np.sin((1 - alpha) * angle) / safe)
    w1 = np.where(close, alpha, np.sin(alpha * angle) / safe)
    q = w0[..., None] * q0 + w1[..., None] * q1
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def rigid(translation: np.ndarray, quaternion: np.ndarray) -> np.ndarray:
    """(..., 3) and (..., 4) -> (..., 4, 4) transforms."""
    translation = np.asarray(translation, np.float64)
    T = np.zeros(translation.shape[:-1] + (4, 4))
    T[..., :3, :3] = quaternion_matrix(quaternion)
    T[..., :3, 3] = translation
    T[..., 3, 3] = 1.0
    return T


class _Track:
    """One child's transforms from its parent over time."""

    def __init__(self):
        self.stamps: list[int] = []
        self.translations: list = []
        self.quaternions: list = []

    def add(self, stamp: int, translation, quaternion) -> None:
        self.stamps.append(int(stamp))
        self.translations.append(translation)
        self.quaternions.append(quaternion)

    def at(self, stamps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(M, 4, 4) transforms at `stamps` and (M,) whether each is known."""
        order = np.argsort(self.stamps, kind='stable')
        times = np.asarray(self.stamps, np.int64)[order]
        times, last = np.unique(times[::-1], return_index=True)  # a repeated stamp: the last
        keep = order[len(order) - 1 - last]
        translations = np.asarray(self.translations, np.float64)[keep]
        quaternions = np.asarray(self.quaternions, np.float64)[keep]
        quaternions /= np.linalg.norm(quaternions, axis=-1, keepdims=True)
        after = np.searchsorted(times, stamps, side='right')
        before = np.clip(after - 1, 0, len(times) - 1)
        after = np.clip(after, 0, len(times) - 1)
        exact = times[before] == stamps
        # Across a longer gap only a transform that did not change (a mount republished slowly
        # on /tf) is known.
        unchanged = (np.abs(translations[after] - translations[before]).max(-1) < 1e-9) & (
            np.abs(np.abs(np.sum(quaternions[after] * quaternions[before], -1)) - 1) < 1e-12)
        bracketed = ((times[before] < stamps) & (times[after] > stamps)
                     & ((times[after] - times[before] <= MAX_INTERPOLATION_GAP_NS) | unchanged))
        span = np.maximum(times[after] - times[before], 1)
        alpha = np.where(exact, 0.0, np.clip((stamps - times[before]) / span, 0.0, 1.0))
        translation = ((1 - alpha)[:, None] * translations[before]
                       + alpha[:, None] * translations[after])
        quaternion = slerp(quaternions[before], quaternions[after], alpha)
        return rigid(translation, quaternion), exact | bracketed


class TransformTree:
    """Transforms T_parent_child added message by message; `lookup` composes chains."""

    def __init__(self):
        self.parent: dict[str, str] = {}
        self.static: dict[str, np.ndarray] = {}
        self.dynamic: dict[str, _Track] = {}
        # child -> what is wrong with its transform (a non-rotation, a second parent): only a
        # lookup through it fails, as tf2 only warns about frames nobody asks for
        self.broken: dict[str, str] = {}

    def add(self, parent: str, child: str, stamp_ns: int, translation, quaternion,
            static: bool) -> None:
        """One transform; a broken one (`broken`) is kept out."""
        parent, child = parent.lstrip('/'), child.lstrip('/')
        if not parent or not child or parent == child:
            self.broken.setdefault(child or parent, f'transform {parent!r} -> {child!r} does '
                                                    f'not name two frames')
            return
        if self.parent.setdefault(child, parent) != parent:
            self.broken.setdefault(child, f'frame {child!r} has two parents, '
                                          f'{self.parent[child]!r} and {parent!r}')
            return
        if not np.isfinite(translation).all():
            self.broken.setdefault(child, f'transform {parent} -> {child} has a non-finite '
                                          f'translation {list(translation)}')
            return
        try:
            quaternion_matrix(quaternion)
        except BadTransform:
            self.broken.setdefault(child, f'transform {parent} -> {child} has a non-finite or '
                                          f'zero-length quaternion {list(quaternion)}')
            return
        if static:
            self.static[child] = rigid(translation, quaternion)
        else:
            self.dynamic.setdefault(child, _Track()).add(stamp_ns, translation, quaternion)

    def frames(self) -> set[str]:
        return set(self.parent) | set(self.parent.values())

    def ancestors(self, frame: str) -> list[str]:
        """`frame`, its parent, ..., the root of its tree."""
        chain = [frame]
        while chain[-1] in self.parent:
            chain.append(self.parent[chain[-1]])
            if len(chain) > len(self.parent) + 1:
                raise BadTransform(f'the TF tree has a loop through {frame!r}')
        return chain

    def moves(self, fixed: str, frame: str) -> bool:
        """Whether a dynamic transform lies between the two (connected) frames."""
        return any(child in self.dynamic and child not in self.static
                   for child in sum(self._paths(fixed, frame), []))

    def lookup(self, fixed: str, frame: str, stamps_ns) -> tuple[np.ndarray, np.ndarray]:
        """T_fixed_frame (M, 4, 4) at each stamp and (M,) whether it is known there, composed
        through their lowest common ancestor only (as tf2: edges above it do not matter).
        Raises BadTransform when the frames are not connected or a transform between them is
        broken."""
        stamps = np.asarray(stamps_ns, np.int64)
        to_frame, to_fixed = self._paths(fixed, frame)
        for child in to_frame + to_fixed:
            if child in self.broken:
                raise BadTransform(self.broken[child])
        ancestor_frame, known_frame = self._compose(to_frame, stamps)
        ancestor_fixed, known_fixed = self._compose(to_fixed, stamps)
        return np.linalg.inv(ancestor_fixed) @ ancestor_frame, known_frame & known_fixed

    def _paths(self, fixed: str, frame: str) -> tuple[list[str], list[str]]:
        """The child frames from `frame` and from `fixed` up to (not including) their lowest
        common ancestor."""
        up_frame, up_fixed = self.ancestors(frame), self.ancestors(fixed)
        common = next((f for f in up_frame if f in set(up_fixed)), None)
        if common is None:
            raise BadTransform(f'the TF tree does not connect {fixed!r} to {frame!r} ('
                               f'{frame!r} hangs from {up_frame[-1]!r}, {fixed!r} from '
                               f'{up_fixed[-1]!r})')
        return up_frame[:up_frame.index(common)], up_fixed[:up_fixed.index(common)]

    def _compose(self, children: list[str], stamps: np.ndarray):
        """T_ancestor_frame for the chain frame, parent, ... (children, lowest first)."""
        T = np.tile(np.eye(4), (len(stamps), 1, 1))
        known = np.ones(len(stamps), bool)
        for child in children:  # T_ancestor_frame = ... T_grandparent_parent T_parent_frame
            if child in self.static:
                T = self.static[child] @ T
            else:
                edge, edge_known = self.dynamic[child].at(stamps)
                T, known = edge @ T, known & edge_known
        return T, known
