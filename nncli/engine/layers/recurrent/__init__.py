"""Recurrent layers: one loop over time for every kind, one step cell per kind.

- ``loop.py``: ``Recurrent``, the time loop (input projection, the steps, the padding mask,
  backpropagation through time) that the cells run on;
- ``bidirectional.py``: the reverse direction, a twin layer over each sequence's real steps;
- ``rnn.py``: the simple rnn's cell and its activations;
- ``lstm.py``: the LSTM's cell (numpy reference, CUDA kernels, numba cell);
- ``lstm_fused.py``: the LSTM's whole float32 step fused (numba) with its own loop;
- ``gru.py``: the GRU's cell (numpy reference, CUDA kernels).
"""
