"""dk platform plugin ``jetson``: NVIDIA Jetson statistics from tegrastats, and DLA facts."""
