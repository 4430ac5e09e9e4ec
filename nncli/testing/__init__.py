"""Stand-ins nncli ships so its GPU path runs without a GPU: ``fakegpu`` (a strict CuPy on
numpy) and ``fakenccl`` (its ``cupy.cuda.nccl``, summing over MPI). ``NNCLI_FAKE_GPU=1`` makes
``device: gpu`` select them (``nncli/backend.py``); nothing else imports them but the tests."""
