"""Pictures: the point-cloud view lands points where the virtual camera sees them."""
import cv2
import numpy as np
import pytest

from hybrid_depth_core.evaluation import visualize


def test_point_cloud_view_puts_a_point_where_the_virtual_camera_sees_it():
    K = np.array([[100.0, 0, 160], [0, 100, 60], [0, 0, 1]])
    # A point 10 m ahead on the road 1.5 m below the camera (y down), and one behind the view.
    points = np.array([[0.0, 1.5, 10.0], [0.0, 0.0, -20.0], [np.nan, 0, 1]])
    colours = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], np.uint8)
    image = visualize.render_cloud(points, colours, 320, 120, K, height_above=4.0,
                                   distance_behind=6.0, pitch_deg=20.0)
    # Seen from 4 m up and 6 m back: offset (0, 5.5, 16), pitched down 20 degrees.
    pitch = np.radians(20.0)
    y = 5.5 * np.cos(pitch) - 16 * np.sin(pitch)
    z = 5.5 * np.sin(pitch) + 16 * np.cos(pitch)
    u, v = round(160.0), round(100 * y / z + 60)
    assert tuple(image[v, u]) == (255, 0, 0)
    red = np.argwhere((image == [255, 0, 0]).all(-1))
    assert len(red) == 4  # the 2x2 splat, and nothing else is red
    assert not (image == [0, 255, 0]).all(-1).any()  # behind the virtual camera: not drawn


def test_nearer_points_hide_farther_ones():
    K = np.array([[50.0, 0, 32], [0, 50, 32], [0, 0, 1]])
    points = np.array([[0.0, 0.0, 30.0], [0.0, 0.0, 5.0], [0.0, 0.0, 60.0]])
    colours = np.array([[10, 10, 10], [200, 0, 0], [0, 0, 200]], np.uint8)
    image = visualize.render_cloud(points, colours, 64, 64, K, height_above=0.0,
                                   distance_behind=0.0, pitch_deg=0.0)
    assert tuple(image[32, 32]) == (200, 0, 0)


def test_montage_and_plot_are_images_with_the_content_drawn():
    panels = [('a', np.zeros((20, 40, 3), np.uint8)), ('b', np.full((30, 40, 3), 255, np.uint8))]
    picture = visualize.montage(panels)
    assert picture.shape == (20 + 30 + 2 * visualize.LABEL_HEIGHT, 40, 3)
    with pytest.raises(ValueError, match='differ in width'):
        visualize.montage([('a', np.zeros((5, 5, 3), np.uint8)),
                           ('b', np.zeros((5, 6, 3), np.uint8))])
    steps = np.arange(100)
    plot = visualize.line_plot({'falling': (steps, 1 / (1 + steps))}, 'loss', 'step', 'loss',
                               log_y=True)
    blue = np.all(plot == visualize.COLOURS[0], axis=-1)
    assert blue.sum() > 300  # the curve, drawn in the first series colour
    rows = np.nonzero(blue[:, 100:600].any(1))[0]
    assert rows.max() - rows.min() > 150  # it falls across most of the plot's height


def test_png_round_trip(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 255, (8, 9, 3), dtype=np.uint8)
    visualize.write_png(tmp_path / 'x.png', rgb)
    np.testing.assert_array_equal(cv2.cvtColor(cv2.imread(str(tmp_path / 'x.png')),
                                               cv2.COLOR_BGR2RGB), rgb)
