"""Benchmarks of tradewire, measured against baselines in the same run (`python -m bench`)."""
