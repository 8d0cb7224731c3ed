"""Image tasks from dataset to accuracy: datasets as ``dk_load_dataset`` returns them, the
model's pre-processing, reading and writing media, classification and detection post-processing,
accuracy metrics and evaluation, drawing results, and calibration-set fingerprints. Shared by
``dk run``, ``dk serve`` and the quantizing and dataset plugins (see docs/api.md)."""
