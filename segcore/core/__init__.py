"""core/: the floor every room stands on: the user-error class (errors.py), temp-then-rename writes (atomic.py),
naming and placing the device (device.py), the machine description (machine.py) and the pins of portable
CPU numerics (numerics.py). Imports nothing from segcore.
"""
