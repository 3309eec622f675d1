"""ONNX export: the graph onnxruntime runs gives the node's depth."""
import numpy as np
import onnxruntime
import pytest

from hybrid_depth_core.data.synthetic import DriveConfig, SyntheticDrive
from hybrid_depth_core.errors import UserError
from hybrid_depth_core.export import export_onnx
from hybrid_depth_core.predictor import DepthPredictor
from hybrid_depth_core.training.config import load_config
from hybrid_depth_core.training.trainer import train


def test_exported_stream_matches_the_predictor_frame_by_frame(checkpoint, tmp_path):
    first_graph, step_graph = tmp_path / 'first.onnx', tmp_path / 'step.onnx'
    export_onnx(checkpoint, first_graph)
    report = export_onnx(checkpoint, step_graph, multi_frame=True)
    assert report.inputs == ['image', 'previous_image', 'previous_features', 'K']
    first = onnxruntime.InferenceSession(str(first_graph))
    step = onnxruntime.InferenceSession(str(step_graph))

    predictor = DepthPredictor.from_checkpoint(checkpoint, device='cpu')
    drive = SyntheticDrive(DriveConfig(width=96, height=64, frames=3, seed=21))  # unseen
    K = drive.camera.K.astype(np.float32)[None]
    previous = None
    for index in range(3):
        rgb = drive.render(index).rgb
        expected = predictor.stream(rgb, drive.camera.K)
        image = predictor.to_tensor(rgb).numpy()
        if previous is None:
            depth, features = first.run(None, {'image': image})
        else:
            depth, features = step.run(None, {'image': image, 'previous_image': previous[0],
                                              'previous_features': previous[1], 'K': K})
        np.testing.assert_allclose(depth[0, 0], expected, rtol=1e-4)
        previous = (image, features)


def test_export_refuses_a_multi_frame_graph_of_a_single_frame_model(tmp_path):
    config = load_config(None, ['data.seeds=[3]', 'data.frames_per_drive=4', 'data.width=64',
                                'data.height=64', 'batch_size=2', 'num_workers=0',
                                'model.multi_frame=false'])
    single = train(config, tmp_path / 'run', max_steps=1, progress=False)
    with pytest.raises(UserError, match='single-frame model'):
        export_onnx(single, tmp_path / 'x.onnx', multi_frame=True)
    assert not (tmp_path / 'x.onnx').exists()
