"""PlantOps infrastructure: local stack, real-server test fixtures and deployment tooling."""

__version__ = "0.1.0"
