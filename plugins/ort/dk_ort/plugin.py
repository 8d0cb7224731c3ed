"""dk plugin: ort (placeholder while being written)."""
