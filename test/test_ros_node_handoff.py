"""The node's calibration store and its summary's multi-frame count, without ROS (frame_handoff's
slot, throttle and the rest of the summary: test_ros_pipeline)."""
import threading
import time

from hybrid_depth_core.runtime.frame_handoff import CalibrationStore, Stats


def test_calibration_store_pairs_by_stamp_else_the_newest_and_keeps_the_last_few():
    store = CalibrationStore(size=3)
    assert store.get(5) is None  # nothing yet
    for stamp in (10, 20, 30):
        store.put(stamp, f'info {stamp}')
    assert store.get(20) == 'info 20'  # its own stamp, though not the newest
    assert store.get(25) == 'info 30'  # none of its stamp: the newest
    store.put(10, 'info 10 again')  # a repeat (a latched one, re-sent) is the newest again
    assert store.get(25) == 'info 10 again'
    store.put(40, 'info 40')  # beyond the size: the one that arrived longest ago goes
    assert store.get(20) == 'info 40' and store.get(30) == 'info 30'


def test_a_calibration_that_follows_its_image_is_waited_for_once_pairs_were_seen():
    store = CalibrationStore(wait_s=2.0)
    store.put(10, 'info 10')
    started = time.monotonic()
    assert store.get(20) == 'info 10'  # no pair seen yet: the newest, at once
    assert time.monotonic() - started < 0.5
    assert store.get(10) == 'info 10'  # a pair: this camera stamps its calibration
    late = threading.Timer(0.2, store.put, (20, 'info 20'))
    late.start()
    started = time.monotonic()
    assert store.get(20) == 'info 20'  # waited for the image's own, sent after it
    assert 0.1 < time.monotonic() - started < 1.5
    started = time.monotonic()
    assert store.get(5) == 'info 20'  # older than what arrived: no wait, the newest
    assert time.monotonic() - started < 0.5


def test_stats_count_frames_matched_against_an_earlier_one():
    stats = Stats(multi_frame=True)
    for used_previous in (False, True, True):
        stats.served(0.05, used_previous)
    assert 'multi-frame 2 of 3' in stats.report()
    stats.served(0.05)
    assert 'multi-frame 0 of 1' in stats.report()  # reset after each report
    single = Stats()
    single.served(0.05)
    assert 'multi-frame' not in single.report()  # a single-frame model: nothing to count
