"""PlantOps web app: upload a plant photo, see the model's prediction, tell us if it was right."""

__version__ = "0.1.0"
