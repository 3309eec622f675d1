"""The camera's motion in a recorded bag, from whichever source it holds: the TF tree (/tf and
/tf_static), odometry (nav_msgs/Odometry, with the camera mount from /tf_static) or a pose
topic of the camera (PoseStamped, PoseWithCovarianceStamped). Training uses the distances the
camera travelled between frames to learn metric scale (the velocity loss)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hybrid_depth_core.recordings.bag_reader import Bag
from hybrid_depth_core.recordings.tf_tree import BadTransform, TransformTree
from hybrid_depth_core.errors import UserError
from hybrid_depth_core.messages.header import stamp_ns

TF_TYPE = 'tf2_msgs/msg/TFMessage'
ODOMETRY_TYPE = 'nav_msgs/msg/Odometry'
POSE_TYPES = ('geometry_msgs/msg/PoseStamped', 'geometry_msgs/msg/PoseWithCovarianceStamped')
MOTION_TYPES = (TF_TYPE, ODOMETRY_TYPE, *POSE_TYPES)
# A step between frames this many times the recording's median moving step is a jump (an
# odometry reset, a relocalisation): distances across it are not used.
JUMP_FACTOR = 20.0
# Steps shorter than this are a robot standing still (odometry noise), not its speed.
STILL_STEP_M = 1e-3


@dataclass(frozen=True)
class MotionOptions:
    enabled: bool = True  # False: ignore every motion source (--no-motion)
    topic: str = ''       # '' : the first that works of TF, odometry, a pose topic
    frame: str = ''       # the fixed frame of a TF chain; '': odom if on it, else the root


@dataclass
class CameraMotion:
    """The camera's pose at each frame, where known."""

    poses: np.ndarray     # (N, 4, 4) T_fixed_camera, NaN where unknown
    segments: np.ndarray  # (N,) int: distances hold between frames of one segment; -1 unknown
    source: str           # where the poses came from, for the report
    caveat: str = ''      # what the report must add (e.g. the base's motion stands in)

    @classmethod
    def exact(cls, poses: np.ndarray, source: str) -> CameraMotion:
        return cls(np.asarray(poses, np.float64), np.zeros(len(poses), np.int64), source)

    def distance(self, i: int, j: int) -> float:
        """How far the camera moved between frames i and j (m); NaN if unknown."""
        if self.segments[i] < 0 or self.segments[i] != self.segments[j]:
            return float('nan')
        return float(np.linalg.norm(self.poses[i, :3, 3] - self.poses[j, :3, 3]))

    @property
    def covered(self) -> int:
        return int((self.segments >= 0).sum())

    def median_step(self) -> float:
        """Median distance between consecutive frames with motion (m); NaN if none."""
        steps = [self.distance(i, i + 1) for i in range(len(self.segments) - 1)]
        steps = [step for step in steps if np.isfinite(step)]
        return float(np.median(steps)) if steps else float('nan')

    def report(self) -> str:
        jumps = int(self.segments.max()) if self.covered else 0
        notes = [self.caveat] if self.caveat else []
        if jumps:
            notes.append(f'{jumps} jump(s) over {JUMP_FACTOR:g}x the median step: no distance '
                         f'across them is used')
        return (f'motion from {self.source}: {self.covered} of {len(self.segments)} frames, '
                f'median {self.median_step():.3f} m per frame'
                + (f' ({"; ".join(notes)})' if notes else ''))


class MotionProblem(Exception):
    """Why a source gave no usable motion."""


def read_camera_motion(bag: Bag, stamps_ns: np.ndarray,
                       options: MotionOptions) -> tuple[CameraMotion | None, str]:
    """The camera's motion at the (sorted) image stamps, and a report line. Without a usable
    source: None and the reason. An explicitly requested topic that fails raises UserError."""
    if not options.enabled:
        return None, 'motion ignored (--no-motion)'
    topics = bag.topics_of(MOTION_TYPES)
    if options.topic:
        if options.topic not in topics:
            raise UserError(f'bag {bag.path} has no motion topic {options.topic!r}; motion '
                            f'topics in it: {", ".join(sorted(topics)) or "none"}')
        if _is_static(options.topic):
            raise UserError(f'bag {bag.path}: {options.topic} holds static transforms, not '
                            f'motion; name /tf, an odometry or a pose topic')
        candidates = [options.topic]
    else:
        order = {TF_TYPE: 0, ODOMETRY_TYPE: 1}
        candidates = sorted((t for t in topics if not _is_static(t)),
                            key=lambda t: (order.get(topics[t], 2), t))
    if not candidates:
        return None, 'no motion (no /tf, odometry or pose topic)'
    camera_frame = _camera_frame(bag)
    problems = []
    for topic in candidates:
        try:
            motion = _motion_from(bag, topic, topics, camera_frame, stamps_ns, options.frame)
        except MotionProblem as problem:
            if options.topic:
                raise UserError(f'bag {bag.path}: {topic}: {problem}') from None
            problems.append(f'{topic}: {problem}')
            continue
        return motion, motion.report()
    return None, 'no usable motion (' + '; '.join(problems) + '): trained without it'


def _is_static(topic: str) -> bool:
    return topic.endswith('tf_static')


def _camera_frame(bag: Bag) -> str:
    for item in bag.messages([bag.image_topic]):
        return item.message.header.frame_id.lstrip('/')
    return ''


def _motion_from(bag: Bag, topic: str, topics: dict, camera_frame: str, stamps_ns: np.ndarray,
                 fixed_frame: str) -> CameraMotion:
    try:
        fixed, camera_frame, source, caveat, tree = _chain(bag, topic, topics, camera_frame,
                                                           fixed_frame)
        poses, known = tree.lookup(fixed, camera_frame, stamps_ns)
    except BadTransform as error:  # not connected, a loop, a broken transform on the chain
        raise MotionProblem(str(error)) from None
    if not tree.moves(fixed, camera_frame):
        raise MotionProblem(f'nothing moves between {fixed} and {camera_frame}')
    if not known.any():
        raise MotionProblem(_no_overlap(tree, stamps_ns))
    poses[~known] = np.nan
    return CameraMotion(poses, _segments(poses, known), source, caveat)


def _chain(bag: Bag, topic: str, topics: dict, camera_frame: str, fixed_frame: str):
    """The tree of the source and the chain to look up in it: (fixed frame, moving frame,
    source text, caveat, tree)."""
    msgtype = topics[topic]
    static_topics = [t for t, kind in topics.items() if kind == TF_TYPE and _is_static(t)]
    tree = TransformTree()
    if msgtype in (TF_TYPE, ODOMETRY_TYPE):  # a pose topic is the camera's own
        _add_tf(tree, bag, static_topics, static=True)
    named = f'{camera_frame!r} (the images\' frame_id)' if camera_frame else \
        'the images\' frame (their header.frame_id is empty)'
    if msgtype == TF_TYPE:
        _add_tf(tree, bag, [topic], static=False)
        if camera_frame not in tree.frames():
            raise MotionProblem(f'the TF tree has no frame {named}; frames: '
                                f'{", ".join(sorted(tree.frames()))}')
        chain = tree.ancestors(camera_frame)
        # REP 105: odom is continuous; map (above it) jumps when the robot relocalises.
        fixed = fixed_frame or ('odom' if 'odom' in chain else chain[-1])
        if fixed not in tree.frames():
            raise MotionProblem(f'the TF tree has no frame {fixed!r} (--motion-frame)')
        return fixed, camera_frame, f'{topic} ({fixed} -> {camera_frame})', '', tree
    fixed, child = _add_poses(tree, bag, topic, msgtype, camera_frame)
    source = f'{topic} ({fixed} -> {child})'
    if msgtype != ODOMETRY_TYPE:
        return fixed, child, source, 'its pose is taken as the camera\'s own', tree
    if camera_frame in tree.frames() and child in tree.ancestors(camera_frame):
        return fixed, camera_frame, f'{source} and /tf_static ({child} -> {camera_frame})', \
            '', tree
    caveat = (f'no static transform from {child} to {named}: the distances {child} travelled '
              f'stand in for the camera\'s')
    return fixed, child, source, caveat, tree


def _add_tf(tree: TransformTree, bag: Bag, topics: list[str], static: bool) -> None:
    if not topics:  # (no connections would read every topic)
        return
    for item in bag.messages(topics):
        for transform in item.message.transforms:
            t, q = transform.transform.translation, transform.transform.rotation
            tree.add(transform.header.frame_id, transform.child_frame_id,
                     stamp_ns(transform, item.time_ns), (t.x, t.y, t.z), (q.x, q.y, q.z, q.w),
                     static)


def _add_poses(tree: TransformTree, bag: Bag, topic: str, msgtype: str,
               camera_frame: str) -> tuple[str, str]:
    """Odometry (child_frame_id in header.frame_id) or a pose of the camera as a dynamic
    transform in `tree`; returns (fixed frame, child frame)."""
    fixed = child = None
    for item in bag.messages([topic]):
        message = item.message
        pose = message.pose if msgtype == POSE_TYPES[0] else message.pose.pose
        parent = message.header.frame_id.lstrip('/') or 'odom'
        this_child = ((message.child_frame_id.lstrip('/') or 'base_link')
                      if msgtype == ODOMETRY_TYPE else camera_frame or 'camera')
        if fixed is None:
            fixed, child = parent, this_child
        elif (parent, this_child) != (fixed, child):
            raise MotionProblem(f'the pose changes frames mid-bag, from {fixed} -> {child} to '
                                f'{parent} -> {this_child}')
        p, q = pose.position, pose.orientation
        tree.add(parent, this_child, stamp_ns(message, item.time_ns), (p.x, p.y, p.z),
                 (q.x, q.y, q.z, q.w), static=False)
    if fixed is None:
        raise MotionProblem('it has no messages')
    return fixed, child


def _no_overlap(tree: TransformTree, stamps_ns: np.ndarray) -> str:
    times = [t for track in tree.dynamic.values() for t in track.stamps]
    if times and (min(times) > stamps_ns[-1] or max(times) < stamps_ns[0]):
        return (f'its stamps ({min(times) / 1e9:.3f}-{max(times) / 1e9:.3f} s) never overlap '
                f'the images\' ({stamps_ns[0] / 1e9:.3f}-{stamps_ns[-1] / 1e9:.3f} s): another '
                f'time base?')
    return 'no image falls between two of its messages less than 0.2 s apart'


def _segments(poses: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Segment ids: a new one after each jump (JUMP_FACTOR x the median of the steps where the
    camera moved, STILL_STEP_M or more); -1 unknown. A camera that never moves that far is a
    MotionProblem."""
    index = np.flatnonzero(known)
    steps = np.linalg.norm(np.diff(poses[index, :3, 3], axis=0), axis=1)
    moving = steps[steps >= STILL_STEP_M]
    if not len(moving):
        raise MotionProblem(f'the camera never moves {1000 * STILL_STEP_M:g} mm or more between '
                            f'two frames in it')
    limit = JUMP_FACTOR * float(np.median(moving))
    segments = np.full(len(poses), -1, np.int64)
    segments[index] = np.concatenate([[0], np.cumsum(steps > limit)])
    return segments
