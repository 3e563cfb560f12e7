"""Code choosers: how the codes of one weight are picked, given its scheme.

``rtn`` rounds each weight to nearest; ``imatrix`` and ``output-mse`` choose each group's or
channel's clip range by an error weighted by the layer's inputs (``importance``);
``model-kl`` scales those ranges to keep the model's next-token distribution
(``model_kl``); ``gptq`` moves each column's error onto the columns still to come
(``gptq``). The calibration they share (token windows, the inputs' Hessians) is in
``calibration``. Every chooser rounds with the quantization layer's own grids.
"""
