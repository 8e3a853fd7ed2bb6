"""PlantOps orchestration: the plants_data table, image ingestion into S3, the Airflow DAGs."""

__version__ = "0.1.0"
