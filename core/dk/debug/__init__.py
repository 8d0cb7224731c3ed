"""``dk debug``: say *where* two engines disagree and how much each layer's int8 costs.

One module per job: :mod:`~dk.debug.graph` (the ONNX graph's nodes, marking tensors as outputs),
:mod:`~dk.debug.subgraph` (prefix subgraphs with ``onnx.utils.extract_model``),
:mod:`~dk.debug.sides` (building and running one engine on a marked graph through the hook API),
:mod:`~dk.debug.bisect` (the search), :mod:`~dk.debug.diverge` (the ``dk debug diverge`` job),
:mod:`~dk.debug.sensitivity` (per-layer int8 sensitivity) and :mod:`~dk.debug.mixed_precision`
(``--max-accuracy-drop``). Heavy libraries are imported inside functions.
"""
