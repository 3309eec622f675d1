"""ImageNet weight compatibility and the parameter / MAC counts of the paper's Table 1."""
import json
import subprocess
import sys

import pytest
import torch
from torch import nn

from hybrid_depth_core.errors import UserError
from hybrid_depth_core.networks import build_depth_model, build_pose_model
from hybrid_depth_core.networks.cmt import LightweightAttention
from hybrid_depth_core.networks.encoders import ResNet18Encoder
from hybrid_depth_core.networks.complexity import MacCounter, PAPER_TABLE_1, profile_models


def torchvision_resnet18_layout() -> dict[str, tuple]:
    """Key -> shape of torchvision's resnet18 state_dict (the file resnet18-f37072fd.pth)."""
    layout = {'conv1.weight': (64, 3, 7, 7)}

    def bn(prefix, channels):
        for name in ('weight', 'bias', 'running_mean', 'running_var'):
            layout[f'{prefix}.{name}'] = (channels,)
        layout[f'{prefix}.num_batches_tracked'] = ()

    bn('bn1', 64)
    in_channels = 64
    for stage, channels in enumerate((64, 128, 256, 512), start=1):
        for block in (0, 1):
            prefix = f'layer{stage}.{block}'
            cin = in_channels if block == 0 else channels
            layout[f'{prefix}.conv1.weight'] = (channels, cin, 3, 3)
            bn(f'{prefix}.bn1', channels)
            layout[f'{prefix}.conv2.weight'] = (channels, channels, 3, 3)
            bn(f'{prefix}.bn2', channels)
            if block == 0 and stage > 1:
                layout[f'{prefix}.downsample.0.weight'] = (channels, cin, 1, 1)
                bn(f'{prefix}.downsample.1', channels)
        in_channels = channels
    layout['fc.weight'], layout['fc.bias'] = (1000, 512), (1000,)
    return layout


def test_resnet18_encoder_state_dict_is_torchvisions_without_fc():
    ours = {k: tuple(v.shape) for k, v in ResNet18Encoder().state_dict().items()}
    expected = {k: v for k, v in torchvision_resnet18_layout().items() if not k.startswith('fc')}
    assert ours == expected


def test_hybrid_encoder_keeps_torchvision_names_for_its_local_blocks():
    ours = {k: tuple(v.shape) for k, v in build_depth_model('hybrid').encoder.state_dict().items()}
    local = {k: v for k, v in torchvision_resnet18_layout().items()
             if k.split('.')[0] in ('conv1', 'bn1', 'layer1')}
    assert {k: ours[k] for k in local} == local


@pytest.fixture(scope='module')
def imagenet_file(tmp_path_factory):
    torch.manual_seed(0)
    state = {k: torch.randn(shape) if shape else torch.tensor(7)
             for k, shape in torchvision_resnet18_layout().items()}
    path = tmp_path_factory.mktemp('weights') / 'resnet18-f37072fd.pth'
    torch.save(state, path)
    return path, state


@pytest.mark.parametrize('arch', ['resnet18', 'hybrid'])
def test_imagenet_weights_load_from_a_local_file(imagenet_file, arch):
    path, state = imagenet_file
    model = build_depth_model(arch, multi_frame=True, pretrained=path)
    loaded = model.encoder.state_dict()
    for key in ('conv1.weight', 'bn1.running_var', 'layer1.1.conv2.weight'):
        torch.testing.assert_close(loaded[key], state[key])
    if arch == 'resnet18':
        torch.testing.assert_close(loaded['layer4.1.bn2.bias'], state['layer4.1.bn2.bias'])


def test_pose_network_first_conv_starts_as_the_mean_of_two_rgb_filters(imagenet_file):
    path, state = imagenet_file
    conv1 = build_pose_model(pretrained=path).encoder.conv1.weight.detach()
    assert conv1.shape == (64, 6, 7, 7)
    torch.testing.assert_close(conv1, torch.cat([state['conv1.weight']] * 2, 1) / 2)
    torch.testing.assert_close(build_pose_model(pretrained=path).encoder.layer4[0].conv1.weight,
                               state['layer4.0.conv1.weight'])


def test_bad_weight_files_give_clear_errors(tmp_path):
    with pytest.raises(UserError, match='does not exist'):
        build_depth_model('resnet18', pretrained=tmp_path / 'missing.pth')
    garbage = tmp_path / 'garbage.pth'
    garbage.write_bytes(b'not a checkpoint')
    with pytest.raises(UserError, match='not a readable PyTorch state_dict'):
        build_depth_model('resnet18', pretrained=garbage)
    wrong = tmp_path / 'wrong.pth'
    torch.save({'conv1.weight': torch.zeros(8, 3, 3, 3)}, wrong)
    with pytest.raises(UserError, match='conv1.weight has shape'):
        build_depth_model('resnet18', pretrained=wrong)


def test_mac_counter_on_layers_with_known_counts():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1, groups=8),
                          nn.Flatten(), nn.Linear(8 * 10 * 10, 5))
    with MacCounter(model) as counter:
        model(torch.rand(2, 3, 10, 10))  # batch 2 counts as batch 1
    assert counter.conv_linear == 8 * 100 * 27 + 8 * 100 * 9 + 5 * 800
    attention = LightweightAttention(16, heads=2, reduction=2)
    with MacCounter(attention) as counter:
        attention(torch.rand(1, 8 * 12, 16), 8, 12)
    # Q, K, V, proj linears + QK^T and AV: N = 96 queries, M = 24 keys, 16 channels.
    assert counter.attention == 2 * 96 * 24 * 16
    assert counter.conv_linear == (96 + 24 + 24 + 96) * 16 * 16 + 24 * 16 * 4


def test_table_1_targets_at_640x192():
    rows = {row.model: row for row in profile_models(640, 192)}
    resnet, hybrid = rows['resnet18 single-frame'], rows['hybrid single-frame']
    for row, (params, gmacs) in ((resnet, PAPER_TABLE_1['resnet18']),
                                 (hybrid, PAPER_TABLE_1['hybrid'])):
        assert row.params_m == pytest.approx(params, rel=0.03)
        assert row.encoder_gmacs_thop == pytest.approx(gmacs, rel=0.03)
    assert hybrid.params_m / resnet.params_m <= 0.78
    assert hybrid.encoder_gmacs_thop / resnet.encoder_gmacs_thop <= 0.77
    assert rows['pose network (2 frames)'].params_m == pytest.approx(12.5, rel=0.02)
    # ManyDepth's reduce conv: 0.09 M params, 0.71 GMACs at 640x192.
    multi = rows['resnet18 multi-frame']
    assert multi.params_m - resnet.params_m == pytest.approx(0.09, abs=0.01)
    assert multi.encoder_gmacs - resnet.encoder_gmacs == pytest.approx(0.71, abs=0.01)


def test_a_pose_network_on_pooled_frames_costs_a_quarter_per_halving():
    full, half = ({row.model: row for row in profile_models(256, 128, downsample)}
                  for downsample in (1, 2))
    pose = 'pose network (2 frames)'
    assert half[pose].frame_gmacs == pytest.approx(full[pose].frame_gmacs / 4, rel=0.05)
    assert half[pose].params_m == full[pose].params_m  # the same network, smaller input
    saved = full[pose].frame_gmacs - half[pose].frame_gmacs
    assert (full['hybrid multi-frame'].frame_gmacs - half['hybrid multi-frame'].frame_gmacs
            == pytest.approx(saved))


def test_profile_command_prints_json_and_rejects_bad_sizes():
    command = [sys.executable, '-m', 'hybrid_depth_ros.cli', 'profile']
    result = subprocess.run(command + ['--width', '320', '--height', '96', '--json'],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert {row['model'] for row in report['models']} >= {'hybrid single-frame',
                                                          'resnet18 multi-frame'}
    bad = subprocess.run(command + ['--width', '100'], capture_output=True, text=True)
    assert bad.returncode == 1 and 'multiples of 32' in bad.stderr
    assert 'Traceback' not in bad.stderr


def test_position_table_size_matches_a_hand_count():
    # heads x N x N/k^2, 2 blocks per stage, at 80x24, 40x12 and 20x6 tokens, k = 4, 2, 1.
    by_hand = 2 * (2 * 1920 * 1920 // 16 + 4 * 480 * 480 // 4 + 8 * 120 * 120)
    from hybrid_depth_core.networks.complexity import position_table_params
    assert position_table_params(640, 192) == by_hand == 1_612_800
