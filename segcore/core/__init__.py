"""core/: the floor every room stands on: the user-error class (errors.py), temp-then-rename writes (atomic.py),
naming and placing the device (device.py) and the machine description (machine.py). Imports nothing from segcore.
"""
