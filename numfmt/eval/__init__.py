"""Measuring a quantized model: perplexity, KL and top-1 against the float model
(``scoring``), generated text (``generation``), encoders' embeddings (``embeddings``), recipes
side by side (``compare``), each layer's sensitivity and mixed precision (``sensitivity``),
and the memory weights take (``memory``: a count alone needs no torch). Import the modules
you use.
"""
