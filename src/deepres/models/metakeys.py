"""The weight-file metadata keys that describe a model, named once. Only models/card.py reads
and writes them; this module exists so that description.py can name a key in its messages
without importing the card (which imports it back)."""

MODEL, MODEL_OPTIONS, CLASS_NAMES, TAG, ORIGIN = (
    "model", "model_options", "class_names", "tag", "origin")
CARD_KEYS = (MODEL, MODEL_OPTIONS, CLASS_NAMES, TAG, ORIGIN)
