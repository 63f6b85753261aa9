"""Live use: voice activity detection (:mod:`.vad`), the stream session that segments, recognises and classifies a
conversation as it is heard (:mod:`.stream_session`, driven by :mod:`.streaming`), and one Whisper pass shared by
speech recognition and the emotion model (:mod:`.stream_encoder`). Speech recognition itself (:mod:`multistill.asr`)
stays beside the pipeline, which ships it to Hub folders."""
