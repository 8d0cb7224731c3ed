"""dk plugin ``datatool``: labelled datasets for calibration and evaluation.

Reads a Bonseyes DataTool output folder (``dataset.json`` and its images, parsed as JSON: the
``custom_*.py`` files shipped beside it are never executed), a folder with one sub-folder of
images per class, and a COCO-style detection annotation file.
"""

__version__ = "0.1.0"
