"""Taking a trained model to a robot: export (fp16 weights, ONNX) and the speed benchmark."""
