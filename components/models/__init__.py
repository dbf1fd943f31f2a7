"""ECG and report encoders, the signal-language foundation model, and its safetensors + JSON artifact.

Modules: ``config`` (architecture configs), ``ecg_resnet``, ``ecg_transformer``, ``ecg`` (factory),
``ecg_input`` (lead mask as input channels), ``tokenizer``, ``text``, ``foundation``
(:class:`~components.models.foundation.SignalLanguageModel`), ``checkpoint`` (``save_foundation`` /
``load_foundation``).
"""
