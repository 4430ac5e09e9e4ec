"""The layers, one module per operation (a folder for a big one): each holds the operation's
forward and backward, its numpy reference and, where it has them, its numba and CUDA kernels
side by side. Every module defining a layer is listed once in ``nncli.engine.LAYER_MODULES``.

- ``dense.py``, ``conv1d.py``, ``conv2d.py`` (``windows.py``: the 2-D window arithmetic that
  conv2d and the 2-D pools share), ``pool1d.py``, ``pool2d.py``, ``global_pool.py``;
- ``normalization.py`` (batchnorm), ``layernorm.py``, ``embedding.py``, ``positional.py``,
  ``attention.py``, ``transformer.py`` (composed of dense, attention, layernorm, dropout);
- ``recurrent/`` (rnn, lstm, gru on one time loop; bidirectional);
- ``shape.py`` (flatten, reshape), ``dropout.py``, ``activation.py`` (each activation as a layer).
"""
