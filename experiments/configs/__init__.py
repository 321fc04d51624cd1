"""`ml_collections` configs, one per paper figure; each docstring gives its command."""
