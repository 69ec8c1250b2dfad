"""segcore: the library behind the DVC stages (data, models, training, evaluation, reports). See docs/."""
