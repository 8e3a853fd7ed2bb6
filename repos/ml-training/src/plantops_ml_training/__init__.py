"""PlantOps training: from an `agg/` dataset version to a registered, gated ONNX model."""

__version__ = "0.1.0"
