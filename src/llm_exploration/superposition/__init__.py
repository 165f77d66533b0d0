"""Toy models of superposition (Elhage et al., 2022): the model, its metrics, its figures."""
