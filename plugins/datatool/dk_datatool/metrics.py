"""Accuracy metrics for datasets (re-exported from :mod:`dk.vision.metrics`, where core's bench uses them)."""

from dk.vision.metrics import classification_metrics, detection_map

__all__ = ["classification_metrics", "detection_map"]
