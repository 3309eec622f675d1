"""The node's calibration store and its summary's multi-frame count, without ROS (frame_handoff's
slot, throttle and the rest of the summary: test_ros_pipeline)."""
import threading
import time

from hybrid_depth_core.runtime.frame_handoff import CalibrationStore, Stats
from hybrid_depth_core.runtime.node_health import ERROR, NO_IMAGE_WARN_S, OK, WARN, health


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


def test_a_calibration_that_follows_its_image_is_waited_for_while_it_keeps_up():
    store = CalibrationStore(wait_s=2.0)
    store.put(10, 'info 10')
    started = time.monotonic()
    assert store.get(20) == 'info 10'  # no pair seen yet: the newest, at once
    assert time.monotonic() - started < 0.5
    for stamp in (30, 40):  # two images in a row find their own: it arrives with them
        store.put(stamp, f'info {stamp}')
        assert store.get(stamp) == f'info {stamp}'
    late = threading.Timer(0.2, store.put, (50, 'info 50'))
    late.start()
    started = time.monotonic()
    assert store.get(50) == 'info 50'  # waited for the image's own, sent after it
    assert 0.1 < time.monotonic() - started < 1.5
    started = time.monotonic()
    assert store.get(5) == 'info 50'  # older than what arrived: no wait, the newest
    assert time.monotonic() - started < 0.5


def test_a_latched_or_slow_calibration_never_stalls_a_frame():
    """The stall issue 33 measured: one camera_info with the first image's stamp, then images
    without one of their own, cost 50 ms each."""
    latched, slow = CalibrationStore(wait_s=0.05), CalibrationStore(wait_s=0.05)
    latched.put(0, 'latched')
    started = time.monotonic()
    for frame in range(60):  # 30 Hz images for 2 s
        stamp = frame * 33_333_333
        if frame % 30 == 0:
            slow.put(stamp, f'slow {frame}')  # 1 Hz, stamped like every 30th image
        assert latched.get(stamp) == 'latched'
        assert slow.get(stamp) == f'slow {frame - frame % 30}'
    assert time.monotonic() - started < 0.05  # not one wait of 50 ms among 120 frames


def test_a_calibration_sent_just_after_its_image_is_waited_for():
    """image_transport's CameraPublisher order: the image, then its camera_info, 5 ms later."""
    store, found = CalibrationStore(wait_s=0.05), []
    for stamp in range(1, 8):
        threading.Timer(0.005, store.put, (stamp, stamp)).start()
        found.append(store.get(stamp))
        time.sleep(0.02)
    assert found[:2] == [None, 1]  # not yet known to follow: not waited for
    assert found[3:] == [4, 5, 6, 7]  # then each image gets its own


def test_a_calibration_that_stops_following_is_not_waited_for_again():
    store = CalibrationStore(wait_s=0.1)
    for stamp in (1, 2, 3):
        store.put(stamp, stamp)
        store.get(stamp)
    started = time.monotonic()
    assert store.get(4) == 3  # waited once, in vain
    assert store.get(5) == 3 and store.get(6) == 3
    assert 0.08 < time.monotonic() - started < 0.18  # the later ones at once


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


def test_health_is_error_while_failing_warn_without_images_else_ok():
    stats = Stats()
    stats.received()
    stats.served(0.04)
    interval, totals = stats.take_interval(), dict(stats.totals)
    args = dict(device='cuda:0', input_topic='/cam/image_raw')
    ok = health(interval, totals, 0.1, None, None, **args)
    assert ok.level == OK and ok.message.startswith('depth at ')
    assert ok.values['images received'] == '1' and ok.values['latency median (ms)'] == '40'
    assert health(interval, totals, 0.1, 'RuntimeError: x', None, **args).level == ERROR
    assert health(interval, totals, None, None, None, **args).message == \
        'no image received yet on /cam/image_raw'
    late = health(interval, totals, NO_IMAGE_WARN_S + 1, None, None, **args)
    assert late.level == WARN and late.message.startswith('no image for 6 s')
    waiting = health(interval, totals, 0.1, None, 'no camera_info received yet', **args)
    assert (waiting.level, waiting.message) == (WARN, 'no camera_info received yet')
    bad = Stats()  # images that all fail the size check (a binned camera, before issue 33)
    bad.received()
    bad.bad()
    state = health(bad.take_interval(), dict(bad.totals), 0.1, None, None, **args,
                   bad_input='camera_info describes a 640x480 image but the image is 320x240')
    assert state.level == WARN and state.message.startswith('every image was bad input: ')
