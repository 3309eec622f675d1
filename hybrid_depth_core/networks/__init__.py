"""Depth and pose networks: the paper's hybrid CNN-transformer encoder, its ResNet18 baseline,
the Monodepth2 decoder, ManyDepth's multi-frame cost volume and pose network."""
from hybrid_depth_core.networks.decoder import disp_to_depth
from hybrid_depth_core.networks.depth_model import (DepthModel, DepthModelConfig, DepthOutput,
                                                    build_depth_model, build_pose_model)
from hybrid_depth_core.networks.encoders import HybridConfig
from hybrid_depth_core.networks.pose import PoseNet

__all__ = ['DepthModel', 'DepthModelConfig', 'DepthOutput', 'HybridConfig', 'PoseNet',
           'build_depth_model', 'build_pose_model', 'disp_to_depth']
