"""Attention analysis and sparse attention for transformers: sinks, masks, sparse kernels."""
