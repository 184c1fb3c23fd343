"""Model formats, each loading into the one ``KeypointModel`` interface (see ``base.py``)."""

from .base import KeypointModel, Prediction
from .registry import available_formats, load_model

__all__ = ["KeypointModel", "Prediction", "available_formats", "load_model"]
