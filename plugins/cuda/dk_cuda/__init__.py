"""dk platform plugin ``cuda``: NVIDIA GPU statistics through NVML."""
