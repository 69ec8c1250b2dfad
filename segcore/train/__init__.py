"""train/: training a net: the experiments registry (experiments.py), the one training loop (loop.py), where
and how it computes (runtime.py) and which images each step draws (batches.py). Imports core, config, data,
models and eval (validation curves).
"""
