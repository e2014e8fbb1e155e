"""Offline experiments on the German Credit applications."""
