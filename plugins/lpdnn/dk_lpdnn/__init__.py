"""dk plugin ``lpdnn``: engines that run behind an HTTP worker (``dk serve`` or an LPDNN AI app)."""
