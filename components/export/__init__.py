"""export: the ONNX graphs (fp32, per-channel int8) of a transformer model, built and checked once, in the pipeline."""
