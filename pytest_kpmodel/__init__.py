"""pytest-kpmodel: acceptance tests for object-detection + keypoint models.

Importing this package must stay cheap: it never imports torch. Feature modules import torch
lazily, inside the functions that need it.
"""

__version__ = "0.1.0"
