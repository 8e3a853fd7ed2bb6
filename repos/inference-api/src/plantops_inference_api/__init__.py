"""PlantOps inference API: the champion model on onnxruntime behind FastAPI."""

__version__ = "0.1.0"
