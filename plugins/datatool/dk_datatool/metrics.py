"""Accuracy metrics for datasets (re-exported from :mod:`dk.metrics`, where core's bench uses them)."""

from dk.metrics import classification_metrics, detection_map

__all__ = ["classification_metrics", "detection_map"]
