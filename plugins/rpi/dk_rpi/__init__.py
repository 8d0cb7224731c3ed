"""dk platform plugin ``rpi``: Raspberry Pi statistics from vcgencmd and sysfs."""
