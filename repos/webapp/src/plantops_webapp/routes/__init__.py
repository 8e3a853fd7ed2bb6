"""The web app's routers: pages for people, probes and metrics for machines."""
