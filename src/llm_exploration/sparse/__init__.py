"""Sparse attention for BERT-style encoders: window masks with global tokens, kernels, fine-tuning."""
