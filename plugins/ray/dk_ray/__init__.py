"""dk plugin ``ray``: run the cells of a ``dk run bench`` sweep on a Ray cluster."""
