"""Tools around the models: the experiment runner and its report (:mod:`.experiment`, :mod:`.experiment_results`,
:mod:`.experiment_report`) with the baselines (:mod:`.baselines`), the Whisper converter and the offline Whisper base
(:mod:`.whisper_convert`, :mod:`.whisper_base`), and Hub publishing (:mod:`.hub`, :mod:`.model_card`)."""
