"""Training: corpora and splits, the cached features, the distillation Trainer, the run workflow of train.py/distill.py.

Data flows one way: :mod:`.data` (a ``datasets`` corpus) -> :mod:`.splits` -> :mod:`.features` (encoder outputs
cached once by :mod:`.feature_cache`) -> :mod:`.trainer` (``MultiStillTrainer``: the one loss, reports) ->
:mod:`.workflow` (the numbered steps' helpers). :mod:`.arguments` holds the scripts' ``HfArgumentParser`` dataclasses.
"""
