"""pipeline/: what each DVC stage does, as functions the stage scripts in stages/ call: the params stage's
resolved views (views.py), data, backbone, train, evaluate, timing and report stages, and the stage scripts'
shared edges (cli.py). No branch on a data set's name. Imports every other room; nothing imports it.
"""
